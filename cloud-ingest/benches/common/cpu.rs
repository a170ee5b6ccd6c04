//! CPU time of processes, read from `/proc`, for benchmarks that compare
//! two sides using different parallelism: wall time alone would credit the
//! side with more connections, CPU time charges each side for its work.

use std::process::Command;
use std::time::Duration;

/// The fields after a `/proc/<pid>/stat` line's parenthesised command
/// name (which may hold spaces), or `None` when the process is gone.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    Some(after.split(' ').map(str::to_owned).collect())
}

fn ticks(fields: &[String], at: usize) -> u64 {
    fields.get(at).and_then(|f| f.parse().ok()).unwrap_or(0)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn from_ticks(t: u64) -> Duration {
    Duration::from_secs_f64(t as f64 / clock_ticks_per_second())
}

/// One process's own CPU time so far (user + system).
pub fn process(pid: u32) -> Duration {
    // utime and stime are the 14th and 15th fields of the whole line.
    from_ticks(stat_fields(pid).map_or(0, |f| ticks(&f, 11) + ticks(&f, 12)))
}

/// This process's own CPU time so far.
#[allow(dead_code)] // Not every bench measures itself.
pub fn this_process() -> Duration {
    process(std::process::id())
}

/// A process and all its descendants: the live ones' own time plus what
/// the exited ones left in their waited-for parent's cutime/cstime. For
/// PostgreSQL's postmaster that is the server's whole CPU time, backends
/// that came and went included.
#[allow(dead_code)] // Not every bench runs PostgreSQL.
pub fn tree(root: u32) -> Duration {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(f) = stat_fields(pid) {
            // The parent's pid is the 4th field of the whole line.
            if let Some(ppid) = f.get(1).and_then(|p| p.parse().ok()) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut total = 0;
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some(f) = stat_fields(pid) {
            // utime, stime, cutime, cstime.
            total += ticks(&f, 11) + ticks(&f, 12) + ticks(&f, 13) + ticks(&f, 14);
        }
        stack.extend(children.get(&pid).into_iter().flatten());
    }
    from_ticks(total)
}
