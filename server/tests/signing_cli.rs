//! The X8 key commands and `--signing-key` of the real `dm-server` binary:
//! key files with the right modes, no overwriting, an endorsement for a
//! rotated key, and instruction responses that carry what the agent checks.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use dmagent::protocol::{Document, Instructions};
use dmagent::trust::{check, PublicKey, TrustSettings, TrustedKey, Verdict};

const BIN: &str = env!("CARGO_BIN_EXE_dm-server");

fn dm_server(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run dm-server");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// One HTTP/1.1 POST on loopback; the body of the answer.
fn post(addr: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "POST /devicemgmt/server.aspx HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: text/xml\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head[9..12].parse().expect("status code");
    let mut body = answer[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end])
                .expect("utf-8")
                .trim(),
            16,
        )
        .expect("hex size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
}

#[test]
fn keygen_endorse_and_a_signing_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    for prefix in [&old, &new] {
        let (ok, text) = dm_server(&["keygen", "--out", path(prefix)]);
        assert!(ok, "{text}");
        assert!(text.contains("key "), "{text}");
    }
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(
        mode(&tmp.path().join("old.key")),
        0o600,
        "a private key is private"
    );
    assert_eq!(mode(&tmp.path().join("old.pub")), 0o644);
    // An existing key is never overwritten.
    let before = std::fs::read(tmp.path().join("old.key")).expect("read");
    let (ok, text) = dm_server(&["keygen", "--out", path(&old)]);
    assert!(!ok && text.contains("not overwriting"), "{text}");
    assert_eq!(
        std::fs::read(tmp.path().join("old.key")).expect("read"),
        before
    );

    let endorsement = tmp.path().join("new.endorsement");
    let (ok, text) = dm_server(&[
        "endorse",
        "--key",
        path(&tmp.path().join("old.key")),
        "--public",
        path(&tmp.path().join("new.pub")),
        "--out",
        path(&endorsement),
    ]);
    assert!(ok, "{text}");
    // An endorsement of another key than the signing key is refused at start.
    let (ok, text) = dm_server(&[
        "--signing-key",
        path(&tmp.path().join("old.key")),
        "--signing-endorsement",
        path(&endorsement),
    ]);
    assert!(!ok && text.contains("endorses another key"), "{text}");

    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sample-catalog");
    let mut server = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--catalog", path(&catalog)])
        .args(["--state", path(&tmp.path().join("state"))])
        .args(["--signing-key", path(&tmp.path().join("new.key"))])
        .args(["--signing-endorsement", path(&endorsement)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dm-server");
    let mut first = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("listening line");
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .expect("listening on …")
        .to_owned();

    let device = [("X-Device-UUID", "SIGNED-CLI")];
    let poll = b"<DevicePoll><Identification><ID>SIGNED-CLI</ID>\
        <DeviceName>SIGNED-CLI</DeviceName></Identification></DevicePoll>";
    let (code, _) = post(&addr, &[device[0], ("X-Device-Action", "Poll")], poll);
    assert_eq!(code, 200);
    let request = b"<InstructionsRequest xmlns=\"http://www.microsoft.com/DeviceManagement.xsd\">\
        <Package ID=\"DEMO-APP\"/></InstructionsRequest>";
    let (code, body) = post(
        &addr,
        &[device[0], ("X-Device-Action", "InstructionRequest")],
        request,
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8_lossy(&body);
    for element in ["<Signature ", "<PackageSignature ", "<SigningKey "] {
        assert!(text.contains(element), "{element} missing from {text}");
    }

    // A device that trusts only the old key accepts it (through the endorsement).
    let old_pub = std::fs::read_to_string(tmp.path().join("old.pub")).expect("read");
    let trust = TrustSettings {
        require_signature: true,
        keys: vec![TrustedKey {
            key: PublicKey::parse(&old_pub).expect("key"),
            not_before: None,
            not_after: None,
        }],
        revoked: Vec::new(),
    };
    let doc = Instructions::decode(&body).expect("instructions");
    let verdict = check(&trust, &doc.packages[0], 1_800_000_000).expect("verified");
    assert!(
        matches!(
            verdict,
            Verdict::Signed {
                endorsed_by: Some(_),
                ..
            }
        ),
        "{verdict:?}"
    );
}
