//! The `process_*` series every Dapr binary exports (Prometheus' process collector),
//! read from `/proc` when the metrics are scraped. Where `/proc` is missing (not Linux)
//! the series are left out rather than reported as zero.

use std::fmt::Write;

/// Linux reports CPU times and start times in USER_HZ ticks, which the kernel ABI fixes
/// at 100 per second on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// What one scrape read.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    max_virtual_bytes: Option<f64>,
    network_receive_bytes: Option<f64>,
    network_transmit_bytes: Option<f64>,
}

/// `/proc/self/stat` fields after the command name: (utime+stime ticks, start ticks,
/// virtual bytes, resident pages).
fn parse_stat(stat: &str) -> Option<(f64, f64, f64, f64)> {
    // The command name is in parentheses and may hold spaces; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 of the man page (state) is fields[0] here, so field N is fields[N - 3].
    let num = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some((num(14)? + num(15)?, num(22)?, num(23)?, num(24)?))
}

/// A soft limit from `/proc/self/limits`; "unlimited" is reported as Go's client does,
/// as the largest 64-bit value.
fn parse_limit(limits: &str, name: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX as f64);
    }
    soft.parse().ok()
}

/// `IpExt: InOctets OutOctets` from `/proc/self/net/netstat`, as Prometheus' collector reads.
fn parse_netstat(netstat: &str) -> Option<(f64, f64)> {
    let mut lines = netstat.lines().filter(|l| l.starts_with("IpExt:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |key: &str| {
        let i = names.iter().position(|n| *n == key)?;
        values.get(i)?.parse::<f64>().ok()
    };
    Some((get("InOctets")?, get("OutOctets")?))
}

fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Resident memory from the kernel's own accounting (`VmRSS`, in KiB), which needs no
/// page size.
fn resident_from_status(status: &str) -> Option<f64> {
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

fn sample() -> Sample {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let mut s = Sample::default();
    if let Some((cpu, start, vsize, _rss_pages)) =
        read("/proc/self/stat").and_then(|t| parse_stat(&t))
    {
        s.cpu_seconds = Some(cpu / TICKS_PER_SECOND);
        s.virtual_bytes = Some(vsize);
        s.start_time_seconds = read("/proc/stat")
            .and_then(|t| boot_time(&t))
            .map(|boot| boot + start / TICKS_PER_SECOND);
    }
    s.resident_bytes = read("/proc/self/status").and_then(|t| resident_from_status(&t));
    s.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    if let Some(limits) = read("/proc/self/limits") {
        s.max_fds = parse_limit(&limits, "Max open files");
        s.max_virtual_bytes = parse_limit(&limits, "Max address space");
    }
    if let Some((rx, tx)) = read("/proc/self/net/netstat").and_then(|t| parse_netstat(&t)) {
        s.network_receive_bytes = Some(rx);
        s.network_transmit_bytes = Some(tx);
    }
    s
}

/// Appends the process series, with Prometheus' names, help and types.
pub fn render(out: &mut String) {
    let s = sample();
    let series: [(&str, &str, &str, Option<f64>); 9] = [
        (
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            "counter",
            s.cpu_seconds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            "gauge",
            s.max_fds,
        ),
        (
            "process_network_receive_bytes_total",
            "Number of bytes received by the process over the network.",
            "counter",
            s.network_receive_bytes,
        ),
        (
            "process_network_transmit_bytes_total",
            "Number of bytes sent by the process over the network.",
            "counter",
            s.network_transmit_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            "gauge",
            s.open_fds,
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
            s.resident_bytes,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
            s.start_time_seconds,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            "gauge",
            s.virtual_bytes,
        ),
        (
            "process_virtual_memory_max_bytes",
            "Maximum amount of virtual memory available in bytes.",
            "gauge",
            s.max_virtual_bytes,
        ),
    ];
    for (name, help, kind, value) in series {
        let Some(v) = value else { continue };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_name_with_spaces() {
        let stat = "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 \
                    12345 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let (cpu, start, vsize, rss) = parse_stat(stat).expect("parsed");
        assert_eq!(cpu, 300.0);
        assert_eq!(start, 12345.0);
        assert_eq!(vsize, 987654321.0);
        assert_eq!(rss, 2048.0);
    }

    #[test]
    fn limits_and_netstat() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n\
                      Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(parse_limit(limits, "Max open files"), Some(1024.0));
        assert_eq!(
            parse_limit(limits, "Max address space"),
            Some(u64::MAX as f64)
        );
        let netstat =
            "TcpExt: A B\nTcpExt: 1 2\nIpExt: InNoRoutes InOctets OutOctets\nIpExt: 0 500 700\n";
        assert_eq!(parse_netstat(netstat), Some((500.0, 700.0)));
    }

    #[test]
    fn this_process_reports_its_memory() {
        let mut out = String::new();
        render(&mut out);
        let rss = out
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("resident memory series");
        assert!(rss > 1024.0 * 1024.0, "{out}");
        assert!(out.contains("# TYPE process_cpu_seconds_total counter"));
    }
}
