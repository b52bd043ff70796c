//! The curl walkthroughs of the docs, run as written (bash, real curl and jq)
//! against a freshly started `lorikeet serve`, so docs that drift from the server
//! fail the suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use support::binary;

/// Pages whose `sh` blocks call the API, in the order a reader follows them: a
/// later page uses the variables (`$API`, `$ADMIN`, `$APP`, `$DEV`) an earlier one set.
const PAGES: &[&str] = &["docs/api.md", "docs/integrations.md", "docs/alerts.md"];

/// Where the docs say the API is; replaced by the test server's address.
const DOCUMENTED_ADDR: &str = "http://127.0.0.1:8080";

/// A fenced `sh` block that calls curl.
struct Block {
    page: &'static str,
    line: usize,
    text: String,
}

fn curl_blocks(page: &'static str, markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match &mut open {
            None if line.trim_end() == "```sh" => open = Some((i + 1, String::new())),
            None => {}
            Some((start, text)) => {
                if line.trim_end() == "```" {
                    if calls_curl(text) > 0 {
                        blocks.push(Block {
                            page,
                            line: *start,
                            text: std::mem::take(text),
                        });
                    }
                    open = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{page}: an sh block is not closed");
    blocks
}

/// How many curl commands `script` runs (comments excluded).
fn calls_curl(script: &str) -> usize {
    script
        .lines()
        .map(|l| {
            let code = if l.trim_start().starts_with('#') {
                ""
            } else {
                l.split(" #").next().unwrap_or("")
            };
            code.match_indices("curl ")
                .filter(|(i, _)| {
                    code[..*i]
                        .chars()
                        .next_back()
                        .is_none_or(|c| c == ' ' || c == '(')
                })
                .count()
        })
        .sum()
}

/// Runs before the blocks. `curl` gets `--fail-with-body` (any answer but a 2xx
/// fails the script, and `set -e` stops it there) and logs each call; a live stream
/// (`curl -N`, which a reader ends with Ctrl-C) is ended after 2 s and passes if it
/// was answered 200.
const PRELUDE: &str = r#"set -euo pipefail
PS4='+ docs$ '
curl() {
  local call="$*"
  printf '%s\n' "${call//$'\n'/ }" >> "$CURL_LOG"
  local a rc=0
  for a in "$@"; do
    if [ "$a" = -N ]; then
      command curl --fail-with-body --show-error --max-time 2 -D "$STREAM_HEADERS" "$@" || rc=$?
      if [ "$rc" = 28 ] && head -n1 "$STREAM_HEADERS" | grep -q ' 200'; then
        echo
        return 0
      fi
      return "$rc"
    fi
  done
  command curl --fail-with-body --show-error "$@"
}
set -x
"#;

#[test]
fn the_curl_walkthroughs_run_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for tool in ["bash", "curl", "jq"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "the docs walkthrough needs {tool}; install it (scripts/test installs jq)"
        );
    }
    let mut blocks = Vec::new();
    for page in PAGES {
        let text = std::fs::read_to_string(root.join(page)).unwrap();
        let found = curl_blocks(page, &text);
        assert!(!found.is_empty(), "{page} has no curl block any more");
        blocks.extend(found);
    }
    let expected_calls: usize = blocks.iter().map(|b| calls_curl(&b.text)).sum();

    // A fresh start, as the walkthrough assumes: the defaults (SQLite in the working
    // directory, a generated admin token), on free ports.
    let dir = binary::fresh_dir("docs");
    let served = binary::serve(&dir, &[]);
    assert!(
        dir.join("lorikeet-admin-token").exists(),
        "a fresh serve writes ./lorikeet-admin-token"
    );
    let token_path = std::fs::canonicalize(dir.join("lorikeet-admin-token")).unwrap();
    assert!(
        served
            .stderr()
            .contains(&format!("admin token in {}", token_path.display())),
        "the start-up line names the token file: {}",
        served.stderr()
    );

    let mut script = String::from(PRELUDE);
    for b in &blocks {
        script.push_str(&format!("\n# ---- {}:{}\n", b.page, b.line));
        script.push_str(&b.text.replace(DOCUMENTED_ADDR, &served.base()));
    }
    std::fs::write(dir.join("walkthrough.sh"), &script).unwrap();
    let out = Command::new("bash")
        .arg("walkthrough.sh")
        .current_dir(&dir)
        .env_remove("LORIKEET_API_ADMIN_TOKEN")
        .env("CURL_LOG", dir.join("curl.log"))
        .env("STREAM_HEADERS", dir.join("stream-headers.txt"))
        .output()
        .unwrap();
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the docs' curl commands failed ({}); transcript:\n{transcript}\nserver log:\n{}",
        out.status,
        served.log()
    );
    let calls = binary::read(&dir, "curl.log").lines().count();
    assert_eq!(
        calls, expected_calls,
        "not every curl of the docs ran; transcript:\n{transcript}"
    );

    let (log, _) = served.stop();
    // Nothing in the walkthrough is the operator's problem: in particular, ending
    // a live stream is not a server error.
    let errors: Vec<_> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "errors logged: {errors:#?}");
}
