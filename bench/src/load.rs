//! Load generation with `wrk` and process CPU accounting from `/proc`.

use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// wrk's Lua hook: one machine-readable line at the end of a run
/// (latencies in microseconds).
pub const WRK_SCRIPT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("KEYWAY_BENCH %d %d %.1f %.1f %d %d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"#;

/// One measured wrk run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Requests per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Responses that were not 2xx/3xx, plus socket errors.
    pub errors: u64,
    /// CPU time of the server process under test per request, µs.
    pub cpu_us_per_req: f64,
}

/// Runs wrk against `url` with `conns` connections for `secs` seconds.
/// `pid` is the server whose CPU time is charged to the run.
pub async fn wrk(
    script: &Path,
    url: &str,
    headers: &[String],
    conns: u32,
    secs: u64,
    pid: Option<u32>,
) -> Result<Load, String> {
    let threads = conns.clamp(1, 2);
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(script);
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    cmd.arg(url);
    let cpu_before = pid.map(cpu_time).transpose()?;
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run wrk (apt-get install -y wrk): {e}"))?;
    let cpu_after = pid.map(cpu_time).transpose()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("KEYWAY_BENCH "))
        .ok_or_else(|| {
            format!(
                "wrk gave no result for {url}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(f64::NAN))
        .collect();
    let [
        requests,
        duration_us,
        p50,
        p99,
        status_errors,
        socket_errors,
    ] = f[..]
    else {
        return Err(format!("unexpected wrk line {line:?}"));
    };
    let cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) if requests > 0.0 => (b - a).as_secs_f64() * 1e6 / requests,
        _ => f64::NAN,
    };
    Ok(Load {
        rps: requests / (duration_us / 1e6),
        p50_us: p50,
        p99_us: p99,
        errors: (status_errors + socket_errors) as u64,
        cpu_us_per_req: cpu,
    })
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU time of process `pid` (all its threads, live and
/// exited), from `/proc/<pid>/stat` (clock-tick resolution, usually 10 ms).
pub fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("bad /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: f64 = fields
        .get(11..13)
        .ok_or("short /proc stat")?
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    Ok(Duration::from_secs_f64(ticks / clock_ticks()))
}

/// Resident set size of process `pid` in bytes (`/proc/<pid>/status` VmRSS).
pub fn rss_bytes(pid: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmRSS".to_owned())
}
