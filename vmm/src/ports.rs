//! The hypercall bus: a guest's `out` to a port is routed here by port
//! number to the device that owns it (the console, the fabric, the disk,
//! the ExCache, the user's program), which reads its argument from guest
//! RAM, does its work and writes its answer back there. Every hypercall
//! goes to [`Bus::serve`] first, which needs no vCPU and is unit-tested
//! with made-up exits; a port no device owns comes back to the vCPU
//! thread, which keeps those about the vCPU itself (booted, exit, reports
//! of a panic or fault, the debugger's stops) and refuses the rest.
//! (Firecracker routes its exits the same way.)

use lego_proto::hypercall::{
    ConsoleWrite, CONSOLE_MAX, PORT_BLOCK_KICK, PORT_BLOCK_SETUP, PORT_CONSOLE, PORT_FABRIC_KICK,
    PORT_FABRIC_SETUP, PORT_FABRIC_WAIT, PORT_MEMORY_CALL, PORT_MEMORY_CALLS, PORT_NOP,
    PORT_PROCESS_START, PORT_USER_ACCESS, PORT_VREGION, PORT_WORKLOAD_DONE,
};
use lego_proto::index::PORT_PAGE_INDEX;
use lego_proto::program::{PORT_PROGRAM_ARGS, PORT_PROGRAM_LAST};

use crate::block::Block;
use crate::excache::ExCache;
use crate::fabric::Fabric;
use crate::guest_args::GuestArgs;
use crate::memory::GuestRam;
use crate::program::Program;
use crate::vcpu::Event;

/// The devices one exit may reach, borrowed from what the vCPUs share.
pub struct Bus<'a> {
    pub ram: &'a GuestRam,
    /// "processor", "memory" or "storage": whose console lines these are.
    pub role: &'static str,
    pub fabric: Option<&'a std::sync::Arc<Fabric>>,
    pub block: Option<&'a Block>,
    pub excache: Option<&'a ExCache>,
    pub program: Option<&'a Program>,
    /// The storage component serving the program's files, 0 for none.
    pub storage: u32,
    /// The vCPU that made the call.
    pub cpu: u32,
}

/// What a served port means for the vCPU that made the call.
pub enum Served {
    Continue,
    /// Tell the main thread, and stop this vCPU (boxed: an event is large
    /// and this is the rare case).
    Finish(Box<Event>),
}

impl Bus<'_> {
    fn args(&self) -> GuestArgs<'_> {
        GuestArgs(self.ram)
    }

    /// Serves `value` written to `port`: None when no device on the bus
    /// owns the port (the vCPU's own ports, and ports that are no
    /// hypercall). An argument the guest got wrong is an error sentence:
    /// the caller stops the component with it.
    pub fn serve(&self, port: u16, value: u32) -> Option<Result<Served, String>> {
        let args = self.args();
        let fabric = self.fabric.map(|f| &**f);
        let done = match port {
            PORT_CONSOLE => self.console(value),
            PORT_FABRIC_SETUP => crate::fabric::port::setup(fabric, &args, value),
            PORT_FABRIC_KICK => {
                crate::fabric::port::kick(fabric);
                Ok(())
            }
            PORT_FABRIC_WAIT => {
                crate::fabric::port::wait(fabric, value);
                Ok(())
            }
            PORT_PAGE_INDEX => {
                crate::fabric::port::page_index(fabric, self.role == "memory", &args, value)
            }
            PORT_BLOCK_SETUP => crate::block::port_setup(self.block, &args, value),
            PORT_BLOCK_KICK => {
                if let Some(block) = self.block {
                    block.kick(self.ram);
                }
                Ok(())
            }
            PORT_NOP => Ok(()),
            PORT_PROCESS_START => crate::excache::port::process_start(self.excache, &args, value),
            PORT_VREGION => crate::excache::port::vregion(self.excache, &args, value),
            PORT_USER_ACCESS => crate::excache::port::user_access(self.excache, &args, value),
            PORT_MEMORY_CALL => crate::excache::port::memory_call(self.excache, &args, value),
            PORT_MEMORY_CALLS => crate::excache::port::memory_calls(self.excache, &args, value),
            PORT_WORKLOAD_DONE => {
                return Some(
                    args.read_arg("workload report", value)
                        .map(|r| Served::Finish(Box::new(Event::WorkloadDone(r)))),
                )
            }
            PORT_PROGRAM_ARGS..=PORT_PROGRAM_LAST => return Some(self.program_port(port, value)),
            _ => return None,
        };
        Some(done.map(|()| Served::Continue))
    }

    /// PORT_CONSOLE: a line of the guest's, on our stderr with its role.
    fn console(&self, value: u32) -> Result<(), String> {
        let args = self.args();
        let arg: ConsoleWrite = args.read_arg("console", value)?;
        let line = args.read_text("console line", arg.addr, arg.len, CONSOLE_MAX)?;
        eprintln!("[{}] {}", self.role, line.trim_end_matches(['\r', '\n']));
        Ok(())
    }

    /// The user's program's ports (`program_ports`).
    fn program_port(&self, port: u16, value: u32) -> Result<Served, String> {
        let Some(program) = self.program else {
            return Err("made a program hypercall, but this processor runs no program".into());
        };
        let ports = crate::program_ports::ProgramPorts {
            args: self.args(),
            program,
            excache: self.excache,
            cpu: self.cpu,
            storage: self
                .fabric
                .filter(|_| self.storage != 0)
                .map(|f| (f, self.storage)),
        };
        Ok(match ports.serve(port, value)? {
            crate::program_ports::Served::Continue => Served::Continue,
            crate::program_ports::Served::Exit(e, path) => {
                Served::Finish(Box::new(Event::ProgramExit(e, path)))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lego_proto::hypercall::{FabricSetup, FABRIC_DISABLED, PORT_BOOTED, PORT_DEBUG, PORT_EXIT};
    use lego_proto::memory::BAD_REQUEST;
    use lego_proto::process::{
        MemoryCalls, ProcessStart, VRegionMap, WorkloadReport, MEMORY_CALLS_MAX,
    };
    use vm_memory::GuestAddress;

    const RAM: usize = 0x10000;

    fn ram() -> GuestRam {
        GuestRam::from_ranges(&[(GuestAddress(0), RAM)]).expect("guest RAM for the test")
    }

    fn bus(ram: &GuestRam) -> Bus<'_> {
        Bus {
            ram,
            role: "processor",
            fabric: None,
            block: None,
            excache: None,
            program: None,
            storage: 0,
            cpu: 0,
        }
    }

    /// A port some device on the bus owns, served.
    fn served(b: &Bus<'_>, port: u16, value: u32) -> Result<Served, String> {
        b.serve(port, value)
            .unwrap_or_else(|| panic!("no device owns port {port:#x}"))
    }

    #[test]
    fn the_vcpus_own_ports_are_not_the_bus_s() {
        let ram = ram();
        let b = bus(&ram);
        // The vCPU's own, and a port that is no hypercall.
        for port in [PORT_BOOTED, PORT_EXIT, PORT_DEBUG, 0x6ff] {
            assert!(b.serve(port, 0).is_none(), "{port:#x}");
        }
        assert!(matches!(served(&b, PORT_NOP, 0), Ok(Served::Continue)));
    }

    #[test]
    fn a_device_that_is_not_there_says_so_in_the_status() {
        let ram = ram();
        let args = GuestArgs(&ram);
        let b = bus(&ram);
        let setup = FabricSetup {
            status: 77,
            ..Default::default()
        };
        args.write_arg("test", 0x100, &setup).unwrap();
        assert!(matches!(
            served(&b, PORT_FABRIC_SETUP, 0x100),
            Ok(Served::Continue)
        ));
        let back: FabricSetup = args.read_arg("test", 0x100).unwrap();
        assert_eq!(back.status, FABRIC_DISABLED);

        let start = ProcessStart {
            slot: 1,
            pid: 7,
            status: 77,
            ..Default::default()
        };
        args.write_arg("test", 0x200, &start).unwrap();
        assert!(served(&b, PORT_PROCESS_START, 0x200).is_ok());
        let back: ProcessStart = args.read_arg("test", 0x200).unwrap();
        assert_eq!((back.status, back.pid), (1, 7));

        let map = VRegionMap {
            slot: 1,
            status: 77,
            index: 3,
        };
        args.write_arg("test", 0x300, &map).unwrap();
        assert!(served(&b, PORT_VREGION, 0x300).is_ok());
        let back: VRegionMap = args.read_arg("test", 0x300).unwrap();
        assert_eq!((back.status, back.index), (1, 3));

        // Without an ExCache each of several calls is a bad request; more
        // than a MemoryCalls holds is a sentence.
        let calls = MemoryCalls {
            slot: 1,
            count: 2,
            ..Default::default()
        };
        args.write_arg("test", 0x400, &calls).unwrap();
        assert!(served(&b, PORT_MEMORY_CALLS, 0x400).is_ok());
        let back: MemoryCalls = args.read_arg("test", 0x400).unwrap();
        let statuses: Vec<u32> = back.replies.iter().map(|r| r.status).collect();
        assert_eq!(&statuses[..3], &[BAD_REQUEST, BAD_REQUEST, 0]);
        let too_many = MemoryCalls {
            count: MEMORY_CALLS_MAX as u32 + 1,
            ..calls
        };
        args.write_arg("test", 0x400, &too_many).unwrap();
        let err = served(&b, PORT_MEMORY_CALLS, 0x400).err().expect("refused");
        assert!(err.contains("more than"), "{err}");
    }

    #[test]
    fn garbage_arguments_are_sentences() {
        let ram = ram();
        let args = GuestArgs(&ram);
        let b = bus(&ram);
        // Arguments past the end of guest RAM.
        for port in [
            PORT_CONSOLE,
            PORT_FABRIC_SETUP,
            PORT_PROCESS_START,
            PORT_MEMORY_CALL,
            PORT_MEMORY_CALLS,
        ] {
            let err = served(&b, port, RAM as u32 - 4).err().expect("refused");
            assert!(err.contains("outside guest RAM"), "{port:#x}: {err}");
        }
        // A console line longer than the limit, and one outside RAM.
        let line = ConsoleWrite {
            addr: 0x400,
            len: CONSOLE_MAX + 1,
        };
        args.write_arg("test", 0x100, &line).unwrap();
        let err = served(&b, PORT_CONSOLE, 0x100).err().expect("refused");
        assert!(err.contains("limit"), "{err}");
        let line = ConsoleWrite {
            addr: u64::MAX - 2,
            len: 8,
        };
        args.write_arg("test", 0x100, &line).unwrap();
        assert!(served(&b, PORT_CONSOLE, 0x100).is_err());
        // A program's call on a processor that runs none.
        let err = served(&b, PORT_PROGRAM_ARGS, 0x100).err().expect("refused");
        assert!(err.contains("runs no program"), "{err}");
    }

    #[test]
    fn a_finished_workload_stops_the_vcpu_with_its_report() {
        let ram = ram();
        let args = GuestArgs(&ram);
        let report = WorkloadReport {
            bytes: 4096,
            ..Default::default()
        };
        args.write_arg("test", 0x100, &report).unwrap();
        match served(&bus(&ram), PORT_WORKLOAD_DONE, 0x100) {
            Ok(Served::Finish(event)) => match *event {
                Event::WorkloadDone(r) => assert_eq!(r.bytes, 4096),
                _ => panic!("the workload's report should be the event"),
            },
            _ => panic!("the workload's report should finish the vCPU"),
        }
    }
}
