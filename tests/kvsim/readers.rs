//! Readers stream (issue 14, class 5): a data file's size does not become
//! memory. Each case writes a large file and reads it in a process of its
//! own, which reports how far reading raised its peak RSS (VmHWM); a reader
//! that loaded the file whole would raise it by the file's size.

use std::io::Write;
use std::path::Path;

/// Bytes of the large files: big enough that holding one shows clearly
/// above the reader's own buffers.
const BIG: usize = 64 << 20;

/// The most a streaming read may raise the peak RSS: its buffers (64 KiB),
/// one line (at most 1 MiB) and the process's own noise, well under [`BIG`].
const BOUND: u64 = 16 << 20;

fn write_big(path: &Path, head: &str, mut line: impl FnMut(&mut Vec<u8>)) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(head.as_bytes()).unwrap();
    let mut written = head.len();
    let mut chunk = Vec::new();
    while written < BIG {
        chunk.clear();
        line(&mut chunk);
        file.write_all(&chunk).unwrap();
        written += chunk.len();
    }
    file.flush().unwrap();
}

/// Writes and reads the case named by `KVSIM_READ_CASE`, printing
/// `READ delta=BYTES outcome=TEXT`. Run alone in a process of its own by
/// `readers_hold_a_line_not_the_file`, so the peak is the read's.
#[test]
#[ignore = "run in a process of its own by readers_hold_a_line_not_the_file"]
fn measure_the_peak_memory_of_a_read() {
    let case = std::env::var("KVSIM_READ_CASE").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    let scenario = |extra: &str| {
        format!(
            "name = \"big\"\n[model]\npreset = \"llama-3.1-8b\"\n[hardware]\ngpu = \"h100-sxm\"\n[traffic]\n\
             arrival = {{ kind = \"trace\", path = {:?}{extra} }}\n",
            data.display().to_string()
        )
    };
    let header = "arrival_s,prompt_tokens,output_tokens\n";
    let load = |toml: String| {
        kvsim::scenario::Scenario::from_toml(&toml, &dir.path().join("s.toml"), &[])
            .map(|s| format!("ok {} rows", s.traffic.trace_len().unwrap_or(0)))
            .unwrap_or_else(|e| e.to_string())
    };
    // Writing is done before the baseline is read.
    let read: Box<dyn Fn() -> String> = match case.as_str() {
        // A trace without line breaks: refused at its first megabyte.
        "one-line-trace" => {
            write_big(&data, header, |c| c.extend_from_slice(&[b'7'; 4096]));
            Box::new(|| load(scenario("")))
        }
        // Millions of rows that are all dropped but one: nothing is kept,
        // so nothing may grow.
        "skipped-rows" => {
            write_big(
                &data,
                "arrival_s,prompt_tokens,output_tokens\n1,5,5\n",
                |c| c.extend_from_slice(b"2,0,9\n"),
            );
            Box::new(|| load(scenario(", zero_tokens = \"skip\"")))
        }
        // The public formats (docs/traces.md) stream too: an Azure trace
        // and a Mooncake trace whose rows are all dropped but one, a
        // Mooncake line that never ends, and a ShareGPT file of 64 MiB whose
        // conversations keep 12 bytes each.
        "azure-skipped" => {
            write_big(
                &data,
                "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.0000000,5,5\n",
                |c| c.extend_from_slice(b"2023-11-16 18:15:47.0000000,5,0\n"),
            );
            Box::new(|| load(scenario(", format = \"azure\", zero_tokens = \"skip\"")))
        }
        "mooncake-skipped" => {
            write_big(
                &data,
                "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 5, \"hash_ids\": [1]}\n",
                |c| {
                    c.extend_from_slice(
                        b"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 0, \"hash_ids\": [2]}\n",
                    )
                },
            );
            Box::new(|| load(scenario(", format = \"mooncake\", zero_tokens = \"skip\"")))
        }
        "mooncake-one-line" => {
            write_big(&data, "", |c| c.extend_from_slice(&[b'7'; 4096]));
            Box::new(|| load(scenario(", format = \"mooncake\"")))
        }
        "sharegpt-padded" => {
            // Conversations padded with a field kvsim ignores: the file is
            // 64 MiB, what is kept 12 bytes per conversation.
            let pad = "p".repeat(4000);
            write_big(&data, "[", |c| {
                c.extend_from_slice(
                    format!(
                        "{{\"id\": \"x\", \"pad\": \"{pad}\", \"conversations\": \
                         [{{\"from\": \"human\", \"value\": \"hi\"}}, \
                         {{\"from\": \"gpt\", \"value\": \"ok\"}}]}},\n"
                    )
                    .as_bytes(),
                )
            });
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&data)
                .unwrap();
            f.write_all(b"{\"id\": \"end\", \"conversations\": []}]\n")
                .unwrap();
            let toml = |path: &Path| {
                format!(
                    "name = \"big\"\nrequests = 1\n[model]\npreset = \"llama-3.1-8b\"\n[hardware]\n\
                     gpu = \"h100-sxm\"\n[traffic]\narrival = {{ kind = \"poisson\", rate = 1.0 }}\n\
                     lengths = {{ kind = \"trace\", format = \"sharegpt\", path = {:?} }}\n",
                    path.display().to_string()
                )
            };
            // The tokenizer's tables (~24 MB, whatever the file) are built
            // once before the baseline: the peak then measures the file.
            let tiny = dir.path().join("tiny.json");
            std::fs::write(
                &tiny,
                r#"[{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "ok"}]}]"#,
            )
            .unwrap();
            let warm = load(toml(&tiny));
            assert!(warm.starts_with("ok"), "{warm}");
            let big = toml(&data);
            Box::new(move || load(big.clone()))
        }
        // A measurement file without line breaks.
        "one-line-measurements" => {
            write_big(&data, "batch,context_tokens,prefill_tokens,step_s\n", |c| {
                c.extend_from_slice(&[b'1'; 4096])
            });
            Box::new(|| match kvsim::calibrate::read_measurements(&data) {
                Ok(rows) => format!("ok {} rows", rows.len()),
                Err(e) => e.to_string(),
            })
        }
        // A sweep table with one huge cell.
        "one-line-table" => {
            write_big(&data, "point,replicates,batch_peak\n0,1,", |c| {
                c.extend_from_slice(&[b'5'; 4096])
            });
            Box::new(|| match kvsim::sweep::read_sweep_table(&data) {
                Ok(t) => format!("ok {} rows", t.rows.len()),
                Err(e) => e.to_string(),
            })
        }
        other => panic!("unknown case {other}"),
    };
    let base = kvsim::engine::peak_rss_bytes().expect("Linux /proc");
    let outcome = read();
    let peak = kvsim::engine::peak_rss_bytes().unwrap();
    println!(
        "READ delta={} outcome={}",
        peak - base,
        outcome.replace('\n', " ")
    );
}

/// Every streaming reader holds a line, not the file: reading a 64 MiB file
/// raises the peak RSS by less than 16 MiB, whether the file is refused
/// (one endless line) or read (millions of rows dropped by `zero_tokens`,
/// or ShareGPT conversations of which only the token counts are kept), in
/// kvsim's own trace format and the public ones.
#[cfg(target_os = "linux")]
#[test]
fn readers_hold_a_line_not_the_file() {
    for (case, expect) in [
        (
            "one-line-trace",
            "line 2: the line is longer than 1048576 bytes",
        ),
        ("skipped-rows", "ok 1 rows"),
        ("azure-skipped", "ok 1 rows"),
        ("mooncake-skipped", "ok 1 rows"),
        (
            "mooncake-one-line",
            "line 1: the line is longer than 1048576 bytes",
        ),
        ("sharegpt-padded", "ok 0 rows"),
        (
            "one-line-measurements",
            "line 2: the line is longer than 1048576 bytes",
        ),
        (
            "one-line-table",
            "line 2: the line is longer than 1048576 bytes",
        ),
    ] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "readers::measure_the_peak_memory_of_a_read",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KVSIM_READ_CASE", case)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{case}: {text}");
        let line = text
            .lines()
            .find_map(|l| l.split_once("READ ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("{case}: {text}"));
        let (delta, outcome) = line.split_once(" outcome=").unwrap();
        let delta: u64 = delta.strip_prefix("delta=").unwrap().parse().unwrap();
        eprintln!("{case}: peak RSS +{delta} bytes reading {BIG} bytes: {outcome}");
        assert!(outcome.contains(expect), "{case}: {outcome}");
        assert!(
            delta < BOUND,
            "{case}: reading raised the peak RSS by {delta} bytes"
        );
    }
}
