//! Building a VM from the command line: KVM, guest RAM, the image, boot
//! structures and vCPUs, in that order. The result is ready to start.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use lego_proto::boot::{BootInfo, GuestTest, Mode, Role, BOOT_MAGIC};

use crate::error::{kvm, Result};
use crate::stats::VcpuStats;
use crate::vcpu::Shared;
use crate::{boot, hypervisor, loader, memory};

/// Everything the builder needs, already validated.
pub struct Config {
    pub role: Role,
    pub image: PathBuf,
    pub mem: u64,
    pub vcpus: u32,
    pub kvm_device: PathBuf,
    pub mode: Mode,
    pub test: Option<GuestTest>,
    pub selftest_iterations: u64,
    pub fabric: Option<crate::fabric::Config>,
    pub fabric_test: Option<(lego_proto::boot::FabricTest, u32, u64)>,
    /// Checked by the command line: at most MAX_VREGION_PEERS.
    pub vregion_peers: Vec<u32>,
    /// Memory: the component that keeps a copy (`--backup`), 0 for none.
    pub backup: u32,
    /// Processor: the ExCache's pages and eviction policy.
    pub excache: Option<(u32, crate::excache::policy::Policy, u32)>,
    pub workload: Option<WorkloadConfig>,
    /// Processor: the user's program and its home memory component.
    pub program: Option<(crate::program::Spec, u32)>,
    /// Storage: the disk (`--disk`), opened and locked.
    pub disk: Option<crate::block::Disk>,
    /// Processor running a program: the storage component serving its
    /// files (`--storage`), 0 for none.
    pub storage: u32,
    /// Processor serving runs (`--control`).
    pub runs: Option<Arc<crate::runs::Runs>>,
    /// What the processor's process ids at the memory components start
    /// with (see [`crate::process_owners`]).
    pub pid_base: u32,
}

impl Config {
    /// Processor: the home memory component of its workload or program,
    /// 0 for none.
    pub fn home(&self) -> u32 {
        self.workload
            .as_ref()
            .map(|w| w.home)
            .or(self.program.as_ref().map(|p| p.1))
            .unwrap_or(0)
    }
}

pub struct WorkloadConfig {
    pub kind: lego_proto::process::Workload,
    pub bytes: u64,
    pub home: u32,
    pub pid: u32,
}

pub struct Vm {
    pub shared: Arc<Shared>,
    /// Guest-physical [start, end) of the guest's heap (RAM above the image).
    pub heap: (u64, u64),
    pub vcpus: Vec<(VcpuFd, Option<VcpuStats>)>,
    // Kept open for the life of the VM.
    _vm: Arc<VmFd>,
    _kvm: Kvm,
}

pub fn build(cfg: &mut Config) -> Result<Vm> {
    let kvm_fd = hypervisor::open(&cfg.kvm_device)?;
    let vm = kvm_fd.create_vm().map_err(kvm("create a VM"))?;
    if !hypervisor::guard_system_msrs(&vm, &kvm_fd)? {
        log::info!("this KVM has no MSR filters: a process's wrmsr is refused by the CPU only (as on ordinary KVM), not checked by the VMM");
    }
    if !hypervisor::refuse_foreign_hypercalls(&vm)? {
        log::info!("this KVM cannot be told not to rewrite hypercall instructions: a process's vmcall (vmmcall on Intel) may hold its vCPU in KVM");
    }
    let ram = memory::create(&vm, cfg.mem)?;
    let image = loader::load(&cfg.image, cfg.role.name(), &ram, cfg.mem)?;
    log::info!(
        "loaded {} ({:#x}..{:#x}, entry {:#x})",
        cfg.image.display(),
        lego_proto::boot::IMAGE_BASE,
        image.end,
        image.entry
    );

    let mut info = BootInfo {
        magic: BOOT_MAGIC,
        mem_size: cfg.mem,
        image_end: image.end,
        role: cfg.role as u32,
        vcpus: cfg.vcpus,
        mode: cfg.mode as u32,
        test: cfg.test.map_or(0, |t| t as u32),
        selftest_iterations: cfg.selftest_iterations,
        component_id: cfg.fabric.as_ref().map_or(0, |f| f.id),
        fabric_test: cfg.fabric_test.map_or(0, |t| t.0 as u32),
        fabric_peer: cfg.fabric_test.map_or(0, |t| t.1),
        tsc_khz: 0,
        fabric_amount: cfg.fabric_test.map_or(0, |t| t.2),
        workload: cfg.workload.as_ref().map_or(0, |w| w.kind as u32),
        workload_pid: cfg.workload.as_ref().map_or(0, |w| w.pid),
        workload_bytes: cfg.workload.as_ref().map_or(0, |w| w.bytes),
        workload_home: cfg.home(),
        excache_pages: cfg.excache.map_or(0, |e| e.0),
        pid_base: cfg.pid_base,
        seed: host_seed(),
        trace_syscalls: cfg.program.as_ref().is_some_and(|p| p.0.trace) as u32,
        ..Default::default()
    };
    info.backup = cfg.backup;
    info.storage = cfg.storage;
    info.serve_runs = cfg.runs.is_some() as u32;
    for (slot, peer) in info.vregion_peers.iter_mut().zip(&cfg.vregion_peers) {
        *slot = *peer;
        info.vregion_peer_count += 1;
    }
    boot::write_idt(&ram, image.isr_table)?;
    let cpuid = kvm_fd
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(kvm("report its supported CPUID"))?;
    let fsgsbase = hypervisor::supports_fsgsbase(&cpuid);
    let xcr0 = hypervisor::guest_xcr0(&cpuid);
    let mut cpuid = cpuid;
    if xcr0.is_some() {
        hypervisor::offer_xsave(&mut cpuid);
    }
    // Without the leaf, the architectural default of 36 bits.
    let phys_bits = cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == 0x8000_0008)
        .map_or(36, |e| e.eax & 0xff);
    log::debug!("guest physical address bits: {phys_bits}");
    info.phys_bits = phys_bits;
    let window = lego_proto::process::Window::for_phys_bits(phys_bits);
    let mut vcpus = Vec::with_capacity(cfg.vcpus as usize);
    let mut pvm = false;
    for cpu in 0..cfg.vcpus {
        let vcpu = vm.create_vcpu(cpu as u64).map_err(kvm("create a vCPU"))?;
        vcpu.set_cpuid2(&cpuid)
            .map_err(kvm("set the vCPU's CPUID"))?;
        boot::setup_vcpu(&vcpu, cpu, cfg.vcpus, image.entry, fsgsbase, xcr0)?;
        pvm = hypervisor::enable_pvm_native(&vcpu)?;
        let stats = VcpuStats::open(&vcpu);
        vcpus.push((vcpu, stats));
    }
    info.pvm = pvm as u32;
    // Written once the vCPUs exist: the TSC frequency comes from one, and
    // the wall clock is paired with its TSC.
    info.tsc_khz = vcpus
        .first()
        .and_then(|(v, _)| v.get_tsc_khz().ok())
        .unwrap_or(0);
    if let Some((v, _)) = vcpus.first() {
        let (ns, tsc) = wall_clock_and_tsc(v);
        info.realtime_ns = ns;
        info.realtime_tsc = tsc;
    }
    boot::write_boot_structures(&ram, &info, cfg.vcpus)?;
    log::info!(
        "{} KVM: {}",
        if pvm { "PVM" } else { "ordinary" },
        if pvm {
            "native-execution MSR set on every vCPU"
        } else {
            "standard long-mode setup"
        }
    );

    let image_name = cfg
        .image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| cfg.image.display().to_string());
    let fabric = match cfg.fabric.take() {
        Some(f) => Some(crate::fabric::Fabric::start(f, ram.clone())?),
        None => None,
    };
    let vm = Arc::new(vm);
    let excache = match (cfg.excache, &fabric) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(crate::error::VmmError::BadOption {
                option: "--excache",
                why: "the ExCache fetches pages from memory components: add --peer ID=ADDR".into(),
            })
        }
        (Some(_), Some(_)) if window.is_none() => {
            return Err(crate::error::VmmError::BadOption {
                option: "--excache",
                why: format!(
                    "this host's CPU gives guests {phys_bits}-bit physical addresses, and the process window needs at least {}: run the processor on another host",
                    lego_proto::process::Window::MIN_PHYS_BITS
                ),
            })
        }
        (Some((pages, policy, prefetch)), Some(f)) => {
            let cache = crate::excache::ExCache::new(
                &kvm_fd,
                vm.clone(),
                f.clone(),
                window.unwrap_or_else(|| unreachable!("checked above")),
                pages,
                policy,
                prefetch,
            )
            .map_err(|why| crate::error::VmmError::BadOption {
                option: "--excache",
                why,
            })?;
            let cache = Arc::new(cache);
            cache
                .start_handlers(cfg.vcpus)
                .map_err(crate::error::VmmError::Thread)?;
            cache
                .start_copier()
                .map_err(crate::error::VmmError::Thread)?;
            // The home's backup is learnt before the program starts: a
            // home killed before the first memory call still has its copy
            // found (it is asked only once, and only while it answers).
            if cfg.home() != 0 {
                cache.learn_backup(cfg.home());
            }
            Some(cache)
        }
    };
    if let (Some(cache), Some(f)) = (&excache, &fabric) {
        let _ = f.answers.set(excache_stats_answer(cache.clone()));
    }
    let program = match cfg.program.take() {
        Some((spec, _)) => Some(Arc::new(
            crate::program::Program::new(spec, cfg.vcpus, cfg.runs.clone())
                .map_err(crate::error::VmmError::Thread)?,
        )),
        None => None,
    };
    let block = cfg.disk.take().map(|disk| {
        let block = crate::block::Block::new(disk);
        Arc::new(match &fabric {
            Some(f) => block.watched_by(f.activity.clone()),
            None => block,
        })
    });
    let shared = Arc::new(Shared {
        block,
        program,
        fabric,
        ram,
        mem_size: cfg.mem,
        role: cfg.role.name(),
        image: image_name,
        image_path: cfg.image.clone(),
        debug_handler: image.debug_handler,
        symbols: image.symbols,
        exits: AtomicU64::new(0),
        vcpu_stats: vcpus
            .iter()
            .filter_map(|(_, s)| s.as_ref().and_then(|s| s.try_clone()))
            .collect(),
        excache,
        pvm,
        window,
        tsc_khz: info.tsc_khz,
        workload_home: cfg.workload.as_ref().map_or(0, |w| w.home),
        storage: cfg.storage,
    });
    Ok(Vm {
        shared,
        heap: (image.end, cfg.mem),
        vcpus,
        _vm: vm,
        _kvm: kvm_fd,
    })
}

/// 32 bytes from the host's random source (zeros if it has none: then the
/// guest mixes in RDRAND).
pub(crate) fn host_seed() -> [u64; 4] {
    let mut seed = [0u64; 4];
    // SAFETY: getrandom fills the 32 bytes of our array.
    let _ = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 32, 0) };
    seed
}

/// The wall clock in ns since 1970 and the guest TSC read right after it.
fn wall_clock_and_tsc(vcpu: &VcpuFd) -> (u64, u64) {
    const MSR_IA32_TSC: u32 = 0x10;
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut msrs = match kvm_bindings::Msrs::from_entries(&[kvm_bindings::kvm_msr_entry {
        index: MSR_IA32_TSC,
        ..Default::default()
    }]) {
        Ok(m) => m,
        Err(_) => return (ns, 0),
    };
    match vcpu.get_msrs(&mut msrs) {
        Ok(1) => (ns, msrs.as_slice()[0].data),
        _ => (ns, 0),
    }
}

/// The ExCache's answer to a stats request, made on the fabric's device
/// thread, which must never wait. The cache's lock is held only for local
/// work (never across a round trip), so it is usually free: then the
/// answer is fresh (a finished workload's counters are exact) and kept;
/// when it is taken, the answer is the last one kept.
fn excache_stats_answer(cache: Arc<crate::excache::ExCache>) -> crate::fabric::VmmAnswer {
    let last = std::sync::Mutex::new(lego_proto::process::ExCacheStats::default());
    Box::new(move || {
        let mut kept = last.lock().unwrap_or_else(|p| p.into_inner());
        // A miss holds the lock for microseconds; a few tries with the
        // CPU given away between them almost always find it free, even on
        // a two-core host where the vCPU thread is busy missing.
        for _ in 0..64 {
            if let Some(fresh) = cache.try_report() {
                *kept = fresh;
                break;
            }
            std::thread::yield_now();
        }
        zerocopy::IntoBytes::as_bytes(&*kept).to_vec()
    })
}
