//! schemathesis, driven by auth's own OpenAPI document, throws generated and mutated requests
//! at every endpoint: none may produce a server error.

use std::time::Duration;

use e2e::Stack;

#[tokio::test]
async fn openapi_driven_fuzzing_finds_no_server_errors() {
    let stack = Stack::start().await;
    stack.register("fuzzer", "correct horse battery").await;
    let tokens = stack.login("fuzzer", "correct horse battery").await;
    let cache = std::env::var("KINO_CACHE_DIR").unwrap_or_else(|_| "/var/tmp/kino".into());
    let report = std::env::temp_dir().join(format!("kino-schemathesis-{}", stack.env.id));
    let run = tokio::process::Command::new(format!("{cache}/venv/bin/schemathesis"))
        .args([
            "run",
            &format!("http://{}/auth/openapi.json", stack.auth_addr),
        ])
        .args(["--checks", "not_a_server_error"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--max-examples",
            "40",
            "--max-time",
            "90",
            "--workers",
            "2",
            "--seed",
            "7",
        ])
        .args([
            "--header",
            &format!(
                "Authorization: Bearer {}",
                tokens["access_token"].as_str().unwrap()
            ),
        ])
        .arg("--report-dir")
        .arg(&report)
        .env("NO_COLOR", "1")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("schemathesis finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&report);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "Test cases: N generated, N passed": it must really have exercised the API. A quiet
    // machine generates 500+ in the time allowed; a loaded one (the whole suite running
    // beside it on 2 cores) about half that, still every operation many times over.
    let generated: u32 = stdout
        .lines()
        .find(|line| line.contains(" generated, "))
        .and_then(|line| line.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(generated >= 200, "only {generated} test cases:\n{stdout}");
}
