//! Drawing what the managers and processors report, as text for a
//! terminal: tables, sizes and the ExCache's miss-latency histogram. Pure
//! functions of the data, so that the tool's output is tested without a
//! rack.

use lego_control::{Component, ExcacheSummary, ProcessInfo, Role, VNode};

/// A size in binary units, e.g. "512 MiB", "1.5 GiB", "0 B".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut v = n as f64;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Columns padded to their widest cell; the first row is the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| {
        rows.iter()
            .filter_map(|r| r.get(c))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..cols).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn state(c: &Component) -> String {
    if c.up {
        "up".to_string()
    } else {
        format!("DOWN {:.1}s", c.silent_ms as f64 / 1000.0)
    }
}

fn resources(c: &Component) -> String {
    let r = &c.resources;
    let mut parts = Vec::new();
    if r.mem_bytes > 0 {
        parts.push(bytes(r.mem_bytes));
    }
    if r.vcpus > 0 {
        parts.push(format!(
            "{} vCPU{}",
            r.vcpus,
            if r.vcpus == 1 { "" } else { "s" }
        ));
    }
    if r.excache_bytes > 0 {
        parts.push(format!("ExCache {}", bytes(r.excache_bytes)));
    }
    if r.disk_bytes > 0 {
        parts.push(format!("disk {}", bytes(r.disk_bytes)));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

fn load(c: &Component) -> String {
    if !c.up && c.resources == Default::default() {
        // Known from the managers' store, not heard since they started.
        return "-".to_string();
    }
    let l = &c.load;
    match c.role {
        Role::Processor => format!(
            "{} process{}, {} run{}",
            l.processes,
            if l.processes == 1 { "" } else { "es" },
            l.runs,
            if l.runs == 1 { "" } else { "s" }
        ),
        Role::Memory => format!(
            "{} of {} used; home of {} process{}, holds vRegions of {} more{}",
            bytes(l.used_bytes),
            bytes(c.resources.mem_bytes),
            l.processes,
            if l.processes == 1 { "" } else { "es" },
            l.held,
            if l.backup == 0 {
                String::new()
            } else {
                format!("; copy at {}", l.backup)
            }
        ),
        Role::Storage => format!(
            "{} of {} disk used",
            bytes(l.used_bytes),
            bytes(c.resources.disk_bytes)
        ),
    }
}

/// `lego status`: the components, the vNodes, and each processor's
/// ExCache.
pub fn status(
    addr: &str,
    components: &[Component],
    vnodes: &[VNode],
    usage: &[Option<(u64, u64)>],
) -> String {
    let up = components.iter().filter(|c| c.up).count();
    let mut out = format!(
        "Rack at {addr}: {} component{}, {up} up; {} vNode{}\n\n",
        components.len(),
        if components.len() == 1 { "" } else { "s" },
        vnodes.len(),
        if vnodes.len() == 1 { "" } else { "s" },
    );
    if components.is_empty() {
        out.push_str("No component has registered yet.\n");
    } else {
        let mut rows = vec![["ID", "ROLE", "ADDRESS", "STATE", "RESOURCES", "LOAD"]
            .map(String::from)
            .to_vec()];
        for c in components {
            rows.push(vec![
                c.id.to_string(),
                c.role.name().to_string(),
                c.fabric.clone(),
                state(c),
                resources(c),
                load(c),
            ]);
        }
        out.push_str(&table(&rows));
    }
    if !vnodes.is_empty() {
        out.push('\n');
        let mut rows = vec![["VNODE", "ID", "STORAGE", "FILES"]
            .map(String::from)
            .to_vec()];
        for (i, v) in vnodes.iter().enumerate() {
            let files = match usage.get(i).copied().flatten() {
                Some((b, n)) => format!("{} in {n} inodes", bytes(b)),
                None => "?".to_string(),
            };
            let storage = match components.iter().find(|c| c.id == v.storage) {
                Some(c) if c.up => format!("{} ({})", c.id, c.fabric),
                Some(c) => format!("{} ({}, DOWN)", c.id, c.fabric),
                None => format!("{} (unknown)", v.storage),
            };
            rows.push(vec![v.name.clone(), v.id.to_string(), storage, files]);
        }
        out.push_str(&table(&rows));
    }
    for c in components
        .iter()
        .filter(|c| c.role == Role::Processor && c.up)
    {
        if let Some(x) = &c.load.excache {
            out.push('\n');
            out.push_str(&excache(c.id, x));
        }
    }
    out
}

/// One processor's ExCache: hit ratio and the miss-latency histogram.
pub fn excache(id: u32, x: &ExcacheSummary) -> String {
    let pct = |permille: u32| permille as f64 / 10.0;
    let mut out = match (x.hit_permille, x.hit_permille_all) {
        (Some(recent), all) => format!(
            "Processor {id} ExCache: hit ratio {:.1}% over the last 10 s{} (sampled: of the pages touched, the share found cached); {} misses\n",
            pct(recent),
            all.map(|a| format!(", {:.1}% since it started", pct(a)))
                .unwrap_or_default(),
            x.misses
        ),
        (None, Some(all)) => format!(
            "Processor {id} ExCache: idle for 10 s; hit ratio {:.1}% since it started (sampled: of the pages touched, the share found cached); {} misses\n",
            pct(all),
            x.misses
        ),
        (None, None) if x.misses == 0 => format!("Processor {id} ExCache: no misses yet\n"),
        (None, None) => format!(
            "Processor {id} ExCache: {} misses; hit ratio not sampled yet\n",
            x.misses
        ),
    };
    if x.histogram.iter().any(|&(_, n)| n > 0) {
        out.push_str("  demand-miss latency:\n");
        out.push_str(&histogram(&x.histogram, 40));
    }
    out
}

/// A latency in microseconds: "50 µs", "2 ms".
fn latency(us: u32) -> String {
    if us >= 1000 && us % 1000 == 0 {
        format!("{} ms", us / 1000)
    } else {
        format!("{us} µs")
    }
}

/// Horizontal bars, one per bucket from the first non-empty one to the
/// last, scaled so the largest is `width` cells (eighths of a cell drawn).
pub fn histogram(buckets: &[(u32, u64)], width: usize) -> String {
    let first = buckets.iter().position(|&(_, n)| n > 0);
    let last = buckets.iter().rposition(|&(_, n)| n > 0);
    let (Some(first), Some(last)) = (first, last) else {
        return String::new();
    };
    let max = buckets[first..=last]
        .iter()
        .map(|&(_, n)| n)
        .max()
        .unwrap_or(1)
        .max(1);
    let labels: Vec<String> = (first..=last)
        .map(|i| {
            let (b, _) = buckets[i];
            match (b, i.checked_sub(1).map(|j| buckets[j].0)) {
                (u32::MAX, Some(prev)) => format!("> {}", latency(prev)),
                (u32::MAX, None) => "all".to_string(),
                (b, _) => format!("≤ {}", latency(b)),
            }
        })
        .collect();
    let label_w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let mut out = String::new();
    for (label, &(_, n)) in labels.iter().zip(&buckets[first..=last]) {
        let eighths = (n as u128 * width as u128 * 8).div_ceil(max as u128) as usize;
        let mut bar = "█".repeat(eighths / 8);
        if eighths % 8 > 0 {
            bar.push(PARTS[eighths % 8]);
        }
        let pad = label_w - label.chars().count();
        out.push_str(&format!(
            "    {}{label}  {bar:<width$}  {n}\n",
            " ".repeat(pad)
        ));
    }
    out
}

/// `lego ps`: one row per process, with the processor it runs on.
pub fn ps(rows: &[(u32, ProcessInfo)]) -> String {
    let mut table_rows = vec![["PROCESSOR", "PID", "VNODE", "RUN", "COMMAND"]
        .map(String::from)
        .to_vec()];
    for (proc_id, p) in rows {
        table_rows.push(vec![
            proc_id.to_string(),
            p.pid.to_string(),
            p.vnode.clone(),
            p.run.to_string(),
            p.command.clone(),
        ]);
    }
    table(&table_rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lego_control::{Load, Resources};

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(512 << 20), "512 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(1000), "1000 B");
    }

    #[test]
    fn a_histogram_spans_its_nonempty_buckets() {
        let h = [(1, 0), (10, 8), (100, 2), (1000, 0), (u32::MAX, 1)];
        let text = histogram(&h, 8);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].contains("≤ 10 µs  ████████  8"), "{text}");
        assert!(lines[1].contains("≤ 100 µs  ██        2"), "{text}");
        assert!(lines[2].ends_with("≤ 1 ms            0"), "{text}");
        assert!(lines[3].contains("> 1 ms  █         1"), "{text}");
        // Eighths of a cell: 1 of 8 on 5 cells is five eighths.
        assert!(histogram(&[(10, 8), (20, 1)], 5).contains('▋'));
        assert_eq!(histogram(&[(5, 0)], 8), "");
    }

    #[test]
    fn status_shows_components_vnodes_and_the_excache() {
        let comp = |id, role, up| Component {
            id,
            role,
            fabric: format!("127.0.0.1:700{id}"),
            control: None,
            resources: Resources {
                mem_bytes: 1 << 30,
                ..Resources::default()
            },
            load: Load {
                used_bytes: 1 << 20,
                excache: Some(ExcacheSummary {
                    hit_permille: Some(750),
                    hit_permille_all: Some(500),
                    misses: 1,
                    histogram: vec![(10, 1)],
                }),
                ..Load::default()
            },
            up,
            silent_ms: 4200,
            host_pid: 1,
        };
        let comps = [
            comp(1, Role::Memory, true),
            comp(2, Role::Storage, false),
            comp(3, Role::Processor, true),
        ];
        let v = [VNode {
            name: "web".into(),
            id: 1,
            storage: 2,
        }];
        let text = status("g:1", &comps, &v, &[Some((8 << 20, 3))]);
        assert!(text.contains("3 components, 2 up; 1 vNode"), "{text}");
        assert!(text.contains("1 MiB of 1 GiB used"), "{text}");
        assert!(text.contains("DOWN 4.2s"), "{text}");
        assert!(
            text.contains("web    1   2 (127.0.0.1:7002, DOWN)  8 MiB in 3 inodes"),
            "{text}"
        );
        assert!(
            text.contains(
                "Processor 3 ExCache: hit ratio 75.0% over the last 10 s, 50.0% since it started"
            ),
            "{text}"
        );
    }
}
