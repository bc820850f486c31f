//! Fabric exercises for the tests (`lego-vmm --fabric-test`): the guest
//! checks every reply itself and reports one line.

use alloc::collections::VecDeque;
use alloc::vec;

use lego_proto::boot::{BootInfo, FabricTest};
use lego_proto::frame::{self, ComponentId, Kind};
use lego_proto::pattern;

use crate::fabric::{self, FabricError};
use crate::println;

/// Bytes per Data request of the stream: one page.
const CHUNK: usize = 4096;
/// Requests in flight at once.
const WINDOW: usize = 16;
const TIMEOUT_MS: u16 = 5000;

/// Runs the exercise the boot information names; returns the exit status.
pub fn run(boot: &BootInfo) -> u32 {
    if let Err(e) = fabric::init(boot) {
        println!("fabric test: no fabric: {e:?}");
        return 1;
    }
    let peer = boot.fabric_peer;
    let result = match FabricTest::from_u32(boot.fabric_test) {
        Some(FabricTest::PingPong) => pingpong(peer, boot.fabric_amount),
        Some(FabricTest::Stream) => stream(peer, boot.fabric_amount),
        Some(FabricTest::Rtt) => rtt(peer, boot.fabric_amount, boot.tsc_khz),
        Some(FabricTest::Flood) => flood(peer, boot.fabric_amount, boot.tsc_khz),
        Some(FabricTest::Survive) => survive(peer, boot.fabric_amount),
        None => {
            println!("fabric test: unknown exercise {}", boot.fabric_test);
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(why) => {
            println!("fabric test failed: {why}");
            1
        }
    }
}

fn describe(e: FabricError) -> alloc::string::String {
    match e {
        FabricError::Remote(code, detail) => alloc::format!("{code:?}: {detail}"),
        other => alloc::format!("{other:?}"),
    }
}

fn pingpong(peer: ComponentId, count: u64) -> Result<(), alloc::string::String> {
    for i in 0..count {
        let mut ping = [0u8; 64];
        pattern::fill(i, &mut ping);
        let reply = fabric::call(peer, Kind::Ping, &ping, TIMEOUT_MS)
            .map_err(|e| alloc::format!("ping {i} to component {peer}: {}", describe(e)))?;
        if reply.header.kind != Kind::Pong || reply.payload != ping {
            return Err(alloc::format!(
                "reply {i} was {:?} with {} bytes, not the Pong of the ping",
                reply.header.kind,
                reply.payload.len()
            ));
        }
    }
    println!("fabric pingpong ok peer={peer} count={count}");
    Ok(())
}

/// Sends `bytes` in page-sized Data requests, up to WINDOW in flight; the
/// peer echoes each. Replies must arrive in request order and intact.
fn stream(peer: ComponentId, bytes: u64) -> Result<(), alloc::string::String> {
    let chunks = bytes.div_ceil(CHUNK as u64);
    let chunk_len = |i: u64| (bytes - i * CHUNK as u64).min(CHUNK as u64) as usize;
    let mut in_flight: VecDeque<(u64, u64)> = VecDeque::new();
    let (mut sent, mut done) = (0u64, 0u64);
    let mut checksum = pattern::FNV_START;
    let mut data = vec![0u8; CHUNK];
    while done < chunks {
        while sent < chunks && in_flight.len() < WINDOW {
            let n = chunk_len(sent);
            pattern::fill(sent, &mut data[..n]);
            let id = fabric::start(peer, Kind::Data, &data[..n])
                .map_err(|e| alloc::format!("sending chunk {sent}: {}", describe(e)))?;
            in_flight.push_back((id, sent));
            sent += 1;
        }
        let Some((id, index)) = in_flight.pop_front() else {
            break;
        };
        let m = fabric::recv(TIMEOUT_MS)
            .map_err(describe)?
            .ok_or_else(|| alloc::format!("no reply to chunk {index} within {TIMEOUT_MS} ms"))?;
        if m.header.kind == Kind::Error {
            let why = frame::decode_error(&m.payload)
                .map_or(alloc::format!("{:?}", m.payload), |(c, d)| {
                    alloc::format!("{c:?}: {d}")
                });
            return Err(alloc::format!("chunk {index}: {why}"));
        }
        if !m.header.is_reply() || m.header.request_id != id {
            return Err(alloc::format!(
                "out of order: expected the reply to request {id} (chunk {index}), got request {}",
                m.header.request_id
            ));
        }
        let n = chunk_len(index);
        pattern::fill(index, &mut data[..n]);
        if m.payload != data[..n] {
            return Err(alloc::format!(
                "chunk {index} came back damaged ({} bytes)",
                m.payload.len()
            ));
        }
        checksum = pattern::fnv(checksum, &m.payload);
        done += 1;
    }
    println!("fabric stream ok peer={peer} bytes={bytes} checksum={checksum:#018x}");
    Ok(())
}

fn micros(cycles: u64, tsc_khz: u32) -> f64 {
    cycles as f64 * 1000.0 / tsc_khz as f64
}

/// Round trips of a 64-byte-class request (`GIVE` 4096) and a 4 KiB reply.
fn rtt(peer: ComponentId, count: u64, tsc_khz: u32) -> Result<(), alloc::string::String> {
    if tsc_khz == 0 {
        return Err("the VMM gave no TSC frequency, so nothing can be timed".into());
    }
    const WARMUP: u64 = 100;
    // One VM exit, for scale.
    let t = crate::cpu::rdtsc();
    for _ in 0..200 {
        crate::hypercall::out(lego_proto::hypercall::PORT_NOP, 0);
    }
    let exit_cycles = (crate::cpu::rdtsc() - t) / 200;
    let request = pattern::give_request(4096);
    let mut expect = vec![0u8; 4096];
    pattern::fill(0, &mut expect);
    let mut samples = alloc::vec::Vec::with_capacity(count as usize);
    let mut exits = 0;
    for i in 0..count + WARMUP {
        if i == WARMUP {
            exits = fabric::exits();
        }
        let t = crate::cpu::rdtsc();
        let reply = fabric::call(peer, Kind::Data, &request, TIMEOUT_MS)
            .map_err(|e| alloc::format!("round trip {i}: {}", describe(e)))?;
        let dt = crate::cpu::rdtsc() - t;
        if reply.payload != expect {
            return Err(alloc::format!(
                "round trip {i}: a reply of {} bytes, not the 4 KiB asked for",
                reply.payload.len()
            ));
        }
        if i >= WARMUP {
            samples.push(dt);
        }
    }
    let exits = fabric::exits() - exits;
    samples.sort_unstable();
    let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
    println!(
        "fabric rtt ok peer={peer} count={count} p50_us={:.1} p99_us={:.1} exit_us={:.1} exits_per_rtt={:.2}",
        micros(at(50), tsc_khz),
        micros(at(99), tsc_khz),
        micros(exit_cycles, tsc_khz),
        exits as f64 / count as f64
    );
    Ok(())
}

/// One-way 4 KiB messages (sent as unsolicited replies, which a monitor
/// drops after receiving), then one Ping: its Pong comes back only after
/// every message before it arrived, in order.
fn flood(peer: ComponentId, count: u64, tsc_khz: u32) -> Result<(), alloc::string::String> {
    if tsc_khz == 0 {
        return Err("the VMM gave no TSC frequency, so nothing can be timed".into());
    }
    let me = fabric::id().ok_or("no fabric")?;
    let mut data = vec![0u8; 4096];
    pattern::fill(7, &mut data);
    let exits = fabric::exits();
    let t = crate::cpu::rdtsc();
    for i in 0..count {
        let mut header = frame::Header::request(Kind::Data, i, me, peer, data.len() as u32);
        header.flags = frame::FLAG_REPLY;
        fabric::send(&header, &data).map_err(|e| alloc::format!("message {i}: {}", describe(e)))?;
    }
    fabric::call(peer, Kind::Ping, b"sync", TIMEOUT_MS)
        .map_err(|e| alloc::format!("the closing ping: {}", describe(e)))?;
    let secs = micros(crate::cpu::rdtsc() - t, tsc_khz) / 1e6;
    let exits = fabric::exits() - exits;
    println!(
        "fabric flood ok peer={peer} count={count} msgs_per_s={:.0} exits_per_msg={:.3}",
        count as f64 / secs,
        exits as f64 / count as f64
    );
    Ok(())
}

/// Pings through a peer's restart: failures are expected, giving up is not.
fn survive(peer: ComponentId, count: u64) -> Result<(), alloc::string::String> {
    let (mut ok, mut failures) = (0u64, 0u64);
    while ok < count {
        match fabric::call(peer, Kind::Ping, b"still there?", 1000) {
            Ok(m) if m.header.kind == Kind::Pong => ok += 1,
            Ok(m) => return Err(alloc::format!("a {:?} instead of a Pong", m.header.kind)),
            Err(e) => {
                failures += 1;
                let why = describe(e);
                if failures == 1 {
                    println!("fabric survive: ping {ok} failed ({why}); retrying");
                }
                if failures >= 300 {
                    return Err(alloc::format!(
                        "{failures} pings failed, the last with {why}"
                    ));
                }
                // Pause: a wait for a message that does not come.
                let _ = fabric::recv(100);
            }
        }
    }
    println!("fabric survive ok peer={peer} count={count} failures={failures}");
    Ok(())
}
