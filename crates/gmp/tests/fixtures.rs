use dozor_gmp::parse_report_file;
#[test]
fn scratch() {
    for f in ["many_vuln.xml", "no_vuln.xml", "one_vuln.xml", "report_detail_v2.xml"] {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/openvas").join(f);
        let r = parse_report_file(&p).unwrap();
        println!("{f}: {:?} {}", r.level_counts(), serde_json::to_string_pretty(&ParsedHead(&r)).unwrap());
        if let Some(x) = r.results.first() { println!("{}", serde_json::to_string_pretty(x).unwrap().chars().take(3000).collect::<String>()); }
    }
}
#[derive(serde::Serialize)]
struct ParsedHead<'a>(#[serde(serialize_with = "head")] &'a dozor_gmp::ParsedReport);
fn head<S: serde::Serializer>(r: &&dozor_gmp::ParsedReport, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    (&r.report_id, &r.gmp_version, &r.task_id, &r.task_name, &r.scan_run_status, &r.scan_start, r.scan_start_ms, &r.scan_end, &r.filter, &r.hosts, r.results.len()).serialize(s)
}
