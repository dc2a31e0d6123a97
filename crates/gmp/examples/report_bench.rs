//! Import benchmark of the report parser (issue 15's bar: a 10,000-result report in < 5 s and
//! < 200 MB RSS).
//!
//! Writes a GMP 22-shaped report with `--results N` results (default 10,000) to a temporary
//! file, modelled on the fixtures in `../shared/fixtures/openvas`: outer and inner `<report>`,
//! a `<ports>` summary, results with mixed-content `<host>`, CVSS v3 `<severities>`, NVT tags,
//! `<solution>`, EPSS, 1 to 40 CVE refs, overrides, `general/tcp` ports and log results, and a
//! host section. Then parses it from the file and prints the elapsed time and the peak RSS
//! (`VmHWM` of /proc/self/status).
//!
//! ```sh
//! cargo run --release -p dozor-gmp --example report_bench -- --results 10000
//! ```

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::time::Instant;

const FAMILIES: [&str; 6] = [
    "Windows : Microsoft Bulletins",
    "Web application abuses",
    "Debian Local Security Checks",
    "General",
    "Product detection",
    "SSL and TLS",
];
const SOLUTION_TYPES: [&str; 5] = [
    "VendorFix",
    "Workaround",
    "Mitigation",
    "NoneAvailable",
    "WillNotFix",
];
const PORTS: [&str; 8] = [
    "general/tcp",
    "22/tcp",
    "80/tcp",
    "443/tcp",
    "445/tcp",
    "3389/tcp",
    "5432/tcp",
    "161/udp",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut results = 10_000usize;
    let mut keep: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--results" => results = args.next().ok_or("--results N")?.parse()?,
            // Keeps the report (bench/vulns imports it into a real server).
            "--out" => keep = Some(args.next().ok_or("--out FILE")?.into()),
            other => {
                return Err(format!("unknown argument {other:?} (--results N, --out FILE)").into());
            }
        }
    }
    let dir = tempfile::tempdir()?;
    let path = keep.unwrap_or_else(|| dir.path().join("report.xml"));
    let started = Instant::now();
    write_report(&path, results)?;
    let size = std::fs::metadata(&path)?.len();
    println!(
        "wrote {results} results, {:.1} MB, in {:.2} s",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let rss_before = vm_hwm_kib();

    let started = Instant::now();
    let report = dozor_gmp::parse_report_file(&path)?;
    let elapsed = started.elapsed();

    let counts = report.level_counts();
    println!(
        "parsed {} results ({} hosts) in {:.3} s; critical {} high {} medium {} low {} log {}",
        report.results.len(),
        report.hosts.len(),
        elapsed.as_secs_f64(),
        counts.critical,
        counts.high,
        counts.medium,
        counts.low,
        counts.log
    );
    match (rss_before, vm_hwm_kib()) {
        (Some(before), Some(after)) => println!(
            "peak RSS (VmHWM): {:.1} MB (before parsing: {:.1} MB)",
            after as f64 / 1024.0,
            before as f64 / 1024.0
        ),
        _ => println!("peak RSS: /proc/self/status has no VmHWM here"),
    }
    if report.results.len() != results {
        return Err(format!("expected {results} results, got {}", report.results.len()).into());
    }
    Ok(())
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn host_of(i: usize) -> String {
    // 250 hosts; every 50th is a name, as when a target lists hosts by name.
    let h = i % 250;
    if h % 50 == 7 {
        format!("srv-{h}.corp.example")
    } else {
        format!("10.20.{}.{}", h / 200, h % 200 + 1)
    }
}

fn severity_of(i: usize) -> f64 {
    // Spread over 0.0 (log) to 10.0 in tenths.
    ((i * 37) % 101) as f64 / 10.0
}

fn write_report(path: &std::path::Path, results: usize) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, r#"<?xml version="1.0"?>"#)?;
    writeln!(
        out,
        r#"<report content_type="text/xml" extension="xml" id="b5f2e8c4-0000-4000-8000-000000000001" format_id="a994b278-1f62-11e1-96ac-406186ea4fc5">
  <owner><name>admin</name></owner><name>2026-12-06T00:00:00Z</name><comment/>
  <creation_time>2026-12-06T00:00:00Z</creation_time><modification_time>2026-12-06T02:00:00Z</modification_time>
  <writable>0</writable><in_use>0</in_use>
  <task id="4949d3d6-705b-41d5-b494-383860f8c970"><name>bench</name></task>
  <report_format id="a994b278-1f62-11e1-96ac-406186ea4fc5"><name>XML</name></report_format>
  <report id="b5f2e8c4-0000-4000-8000-000000000001">
    <gmp><version>22.6</version></gmp>
    <sort><field>severity<order>descending</order></field></sort>
    <filters id=""><term>apply_overrides=1 levels=chmlg min_qod=30 rows=-1 first=1</term><keywords/></filters>
    <scan_run_status>Done</scan_run_status>
    <task id="4949d3d6-705b-41d5-b494-383860f8c970"><name>bench</name><comment/><target id="1a9c3697-d422-4280-96d8-2381138a7b70"><trash>0</trash><name>Lab</name><comment/></target><progress>100</progress></task>
    <timestamp>2026-12-06T00:00:00Z</timestamp>
    <scan_start>2026-12-06T00:01:00Z</scan_start>
    <timezone>UTC</timezone><timezone_abbrev>UTC</timezone_abbrev>
    <ports max="-1" start="1"><count>{results}</count>"#
    )?;
    for i in 0..results {
        writeln!(
            out,
            "      <port>{}<host>{}</host><severity>{:.1}</severity><threat>High</threat></port>",
            PORTS[i % PORTS.len()],
            host_of(i),
            severity_of(i)
        )?;
    }
    writeln!(out, "    </ports>\n    <results max=\"-1\" start=\"1\">")?;
    let mut text = String::with_capacity(16 * 1024);
    for i in 0..results {
        text.clear();
        write_result(&mut text, i);
        out.write_all(text.as_bytes())?;
    }
    writeln!(out, "    </results>")?;
    for h in 0..250.min(results) {
        writeln!(
            out,
            "    <host><ip>{}</ip><asset asset_id=\"a-{h}\"/><start>2026-12-06T00:01:00Z</start><end>2026-12-06T01:50:00Z</end>\
             <port_count><page>8</page></port_count><detail><name>hostname</name><value>host{h}</value><source><type>nvt</type><name>1.3.6.1.4.1.25623.1.0.103997</name></source></detail>\
             <detail><name>best_os_txt</name><value>Debian GNU/Linux 12</value><source><type>nvt</type><name>1.3.6.1.4.1.25623.1.0.105937</name></source></detail></host>",
            host_of(h)
        )?;
    }
    writeln!(
        out,
        "    <scan_end>2026-12-06T01:59:00Z</scan_end>\n  </report>\n</report>"
    )?;
    out.flush()
}

fn write_result(out: &mut String, i: usize) {
    let severity = severity_of(i);
    let original = if i % 10 == 3 { 5.0 } else { severity };
    let threat = match severity {
        s if s >= 7.0 => "High",
        s if s >= 4.0 => "Medium",
        s if s > 0.0 => "Low",
        _ => "Log",
    };
    let host = host_of(i);
    let oid = 800_000 + i;
    let family = FAMILIES[i % FAMILIES.len()];
    let solution_type = SOLUTION_TYPES[i % SOLUTION_TYPES.len()];
    let _ = write!(
        out,
        r#"      <result id="r-{i:08}">
        <name>Vulnerability check {oid} (&lt;component {i}&gt;)</name>
        <owner><name>admin</name></owner>
        <modification_time>2026-12-06T01:00:00Z</modification_time><comment/>
        <creation_time>2026-12-06T01:00:00Z</creation_time>
        <host>{host}<asset asset_id="a-{h}"/><hostname>host{h}</hostname></host>
        <port>{port}</port>
        <nvt oid="1.3.6.1.4.1.25623.1.0.{oid}">
          <type>nvt</type>
          <name>Vulnerability check {oid} (&lt;component {i}&gt;)</name>
          <family>{family}</family>
          <cvss_base>{severity:.1}</cvss_base>
          <severities score="{severity:.1}">
            <severity type="cvss_base_v3"><origin>NVD</origin><date>2025-07-08T19:15:38+02:00</date><score>{severity:.1}</score><value>CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H</value></severity>
          </severities>
          <tags>cvss_base_vector=CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H|summary=This host is missing an important security
  update for component {i}.|insight=Multiple flaws exist, among them memory corruption and
  improper input validation.|affected=Component {i} before version 2.{i}.|impact=Successful exploitation allows an attacker
  to execute arbitrary code or cause a denial of service.|solution=Update to version 2.{i} or later.|vuldetect=Checks if a vulnerable version is present
  on the target host.|solution_type={solution_type}</tags>
          <solution type="{solution_type}">Update to version 2.{i} or later.</solution>
          <epss>
            <max_severity><score>0.00143</score><percentile>0.35177</percentile><cve id="CVE-2025-{c0:05}"><severity>{severity:.1}</severity></cve></max_severity>
            <max_epss><score>0.09023</score><percentile>0.92284</percentile><cve id="CVE-2025-{c1:05}"><severity>7.5</severity></cve></max_epss>
          </epss>
          <refs>
"#,
        h = i % 250,
        port = PORTS[i % PORTS.len()],
        c0 = i % 90_000,
        c1 = (i + 1) % 90_000,
    );
    for c in 0..(1 + i % 40) {
        let _ = writeln!(
            out,
            r#"            <ref type="cve" id="CVE-2025-{:05}"/>"#,
            (i * 7 + c) % 90_000
        );
    }
    let _ = write!(
        out,
        r#"            <ref type="url" id="https://support.example.com/kb/{i}"/>
            <ref type="cert-bund" id="WID-SEC-2025-{i}"/>
          </refs>
        </nvt>
        <scan_nvt_version>2025-08-15T07:40:49+02:00</scan_nvt_version>
        <threat>{threat}</threat>
        <severity>{severity:.1}</severity>
        <qod><value>{qod}</value><type>package</type></qod>
        <description>Vulnerable package: component-{i}
Installed version: 2.{i}.0~deb12u1
Fixed version:     2.{i}.1
Installation
path / port:       /usr/lib/component-{i}

</description>
        <original_threat>{threat}</original_threat>
        <original_severity>{original:.1}</original_severity>
        <compliance>undefined</compliance>
      </result>
"#,
        qod = 30 + i % 70,
    );
}
