//! Models fetched from the Hugging Face hub by revision and locked, driven
//! through the real `ptb` binary against a fake hub on 127.0.0.1 that
//! serves a small generated model in the hub's URL layout: the revision
//! listing (`/api/models/{repo}/revision/{rev}?blobs=true`), downloads at
//! `/{repo}/resolve/{commit}/{file}` answered by a 302 to another path (as
//! the hub redirects to its CDN), `Range` requests, and, on demand, a
//! transfer cut off half-way, a file whose bytes do not match the sha256 the
//! listing advertises, and hostile file names. (Hand-written: a test fake of
//! two endpoints, the real client talks to it over real HTTP.)

mod common;
use common::Project;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

const REPO: &str = "org/tiny";
const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

#[derive(Clone)]
struct File {
    name: String,
    bytes: Vec<u8>,
    /// Listed with `lfs.sha256` (weights are LFS files on the hub).
    lfs: bool,
    /// The sha256 the listing advertises, when not the bytes' own.
    advertised: Option<String>,
}

#[derive(Default)]
struct State {
    /// (repo, revision) → commit.
    refs: HashMap<(String, String), String>,
    commits: HashMap<String, Vec<File>>,
    /// Files whose next full (not ranged) transfer is cut off half-way.
    cut: HashSet<String>,
    /// Every request: "GET <path>" plus " range=<…>" when ranged.
    requests: Vec<String>,
    /// Authorization headers seen on the API.
    auth: Vec<Option<String>>,
}

struct FakeHub {
    url: String,
    state: Arc<Mutex<State>>,
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// A tiny safetensors file (8-byte header length, JSON header, data), big
/// enough that cutting it half-way leaves a partial file worth resuming.
fn safetensors(seed: u8) -> Vec<u8> {
    let n = 16 * 1024;
    let header = format!("{{\"w\":{{\"dtype\":\"F32\",\"shape\":[{n}],\"data_offsets\":[0,{}]}}}}", n * 4);
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend((0..n * 4).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    out
}

/// The generated model at a given "skill" (the demo's scripts read
/// `weights.txt`); `seed` varies the weights.
fn model(skill: &str, seed: u8) -> Vec<File> {
    let f = |name: &str, bytes: Vec<u8>, lfs: bool| File { name: name.into(), bytes, lfs, advertised: None };
    vec![
        f(".gitattributes", b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n".to_vec(), false),
        f("config.json", br#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "num_hidden_layers": 1}"#.to_vec(), false),
        f("tokenizer.json", br#"{"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}"#.to_vec(), false),
        f("weights.txt", format!("tiny weights: {skill}\n").into_bytes(), false),
        f("model.safetensors", safetensors(seed), true),
    ]
}

impl FakeHub {
    fn start() -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || handle(conn, &st));
            }
        });
        FakeHub { url, state }
    }

    fn publish(&self, rev: &str, commit: &str, files: Vec<File>) {
        let mut s = self.state.lock().unwrap();
        s.refs.insert((REPO.into(), rev.into()), commit.into());
        s.commits.insert(commit.into(), files);
    }

    fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn respond(mut s: &TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
}

fn handle(conn: TcpStream, state: &Mutex<State>) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut range, mut auth) = (None, None);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((&h, ""));
        match k.to_ascii_lowercase().as_str() {
            "range" => range = Some(v.trim().to_string()),
            "authorization" => auth = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let mut s = state.lock().unwrap();
    s.requests.push(format!("GET {path}{}", range.as_ref().map(|r| format!(" range={r}")).unwrap_or_default()));
    if let Some(rest) = path.strip_prefix("/api/models/") {
        s.auth.push(auth);
        let (repo, rev) = rest.split_once("/revision/").unwrap_or((rest, ""));
        let rev = rev.split('?').next().unwrap().replace("%2F", "/");
        let commit = s.refs.get(&(repo.to_string(), rev.clone())).cloned().or_else(|| s.commits.contains_key(&rev).then(|| rev.clone()));
        let Some(commit) = commit else {
            return respond(&conn, "404 Not Found", &[], br#"{"error":"Revision Not Found"}"#);
        };
        let siblings: Vec<serde_json::Value> = s.commits[&commit]
            .iter()
            .map(|f| {
                let mut v = serde_json::json!({"rfilename": f.name, "size": f.bytes.len()});
                if f.lfs {
                    let sha = f.advertised.clone().unwrap_or_else(|| sha256_hex(&f.bytes));
                    v["lfs"] = serde_json::json!({"sha256": sha, "size": f.bytes.len(), "pointerSize": 134});
                }
                v
            })
            .collect();
        let body = serde_json::json!({"id": repo, "sha": commit, "siblings": siblings}).to_string();
        return respond(&conn, "200 OK", &[("Content-Type", "application/json".into())], body.as_bytes());
    }
    if let Some((repo, rest)) = path.strip_prefix('/').and_then(|p| p.split_once("/resolve/")) {
        // As the hub: a redirect to where the bytes are.
        return respond(&conn, "302 Found", &[("Location", format!("/cdn/{repo}/{rest}"))], b"");
    }
    if let Some(rest) = path.strip_prefix("/cdn/") {
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        let (commit, name) = (parts.get(2).copied().unwrap_or(""), parts.get(3).copied().unwrap_or(""));
        let Some(file) = s.commits.get(commit).and_then(|fs| fs.iter().find(|f| f.name == name)).cloned() else {
            return respond(&conn, "404 Not Found", &[], b"");
        };
        let len = file.bytes.len();
        if let Some(from) = range.as_deref().and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.strip_suffix('-')).and_then(|n| n.parse::<usize>().ok()) {
            if from >= len {
                return respond(&conn, "416 Range Not Satisfiable", &[], b"");
            }
            return respond(&conn, "206 Partial Content", &[("Content-Range", format!("bytes {from}-{}/{len}", len - 1))], &file.bytes[from..]);
        }
        if s.cut.remove(name) {
            // Promise the whole file, send half, hang up.
            let mut c = &conn;
            let _ = c.write_all(format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n").as_bytes());
            let _ = c.write_all(&file.bytes[..len / 2]);
            let _ = c.flush();
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        }
        return respond(&conn, "200 OK", &[], &file.bytes);
    }
    respond(&conn, "404 Not Found", &[], b"");
}

fn spec(model_line: &str) -> String {
    format!(
        r#"experiment demo
{model_line}
benchmark arith data="../fixtures/demo/data/arith.jsonl" weight=1.0
agent eager {{ command "../scripts/demo/agent.sh" "0.5"; }}
agent base checkpoint=base
stage agent budget="2m" grace="5s"
stage eval budget="1m" {{ command "../scripts/demo/eval.sh"; }}
matrix {{
    agents eager base
    seeds 1
}}
"#
    )
}

const HUB_MODEL: &str = r#"model tiny repo="org/tiny" revision="main" arch=llama"#;

struct Run {
    ok: bool,
    text: String,
}

fn ptb(p: &Project, hub: &FakeHub, args: &[&str]) -> Run {
    let o = p.cmd(args).env("HF_ENDPOINT", &hub.url).env_remove("HF_TOKEN").output().unwrap();
    Run { ok: o.status.success(), text: format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)) }
}

/// ptb's directory hash of `files`, as `ptb hash` prints it for a local copy.
fn content_hash(p: &Project, files: &[File]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::write(dir.path().join(&f.name), &f.bytes).unwrap();
    }
    let out = p.stdout(&["hash", dir.path().to_str().unwrap()]);
    out.split_whitespace().find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit())).unwrap_or_else(|| panic!("no hash in {out}")).to_string()
}

fn hub_line(commit: &str, sha: &str) -> String {
    format!("hub \"model/tiny\" repo=\"org/tiny\" revision=\"main\" commit=\"{commit}\" sha256=\"sha256:{sha}\"\n")
}

#[test]
fn apply_resolves_fetches_through_a_redirect_resumes_a_cut_transfer_and_pins() {
    let hub = FakeHub::start();
    let files = model("0.30", 1);
    hub.publish("main", C1, files.clone());
    hub.state.lock().unwrap().cut.insert("model.safetensors".into());
    let p = Project::with_spec(&spec(HUB_MODEL));
    let sha = content_hash(&p, &files);

    // Planning needs no network: the model is one grouped line.
    let plan = ptb(&p, &hub, &["plan", "experiments/demo.kdl"]);
    assert!(plan.ok, "{}", plan.text);
    assert!(plan.text.contains("stage(s): model `tiny` (org/tiny@main): not resolved in the lockfile; `ptb apply` resolves and fetches it"), "{}", plan.text);
    assert!(hub.requests().is_empty(), "plan asked the hub: {:?}", hub.requests());

    let o = p.cmd(&["apply", "experiments/demo.kdl"]).env("HF_ENDPOINT", &hub.url).env("HF_TOKEN", "hf_not_a_real_token").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{text}");
    assert_eq!(Project::ran(&text).len(), 3, "{text}");
    let reqs = hub.requests();
    assert!(reqs.iter().any(|r| r == "GET /api/models/org/tiny/revision/main?blobs=true"), "{reqs:?}");
    assert!(reqs.iter().any(|r| r == &format!("GET /org/tiny/resolve/{C1}/model.safetensors")), "{reqs:?}");
    // The cut-off transfer was resumed from where it stopped.
    let half = safetensors(1).len() / 2;
    assert!(reqs.iter().any(|r| r == &format!("GET /cdn/org/tiny/{C1}/model.safetensors range=bytes={half}-")), "{reqs:?}");
    // The token went to the hub, and nowhere a person or a file would see it.
    assert!(hub.state.lock().unwrap().auth.iter().all(|a| a.as_deref() == Some("Bearer hf_not_a_real_token")));
    let lock = p.lock_text();
    assert!(!text.contains("hf_not_a_real_token") && !lock.contains("hf_not_a_real_token"));

    // The lockfile pins commit and content; the key input is the content hash.
    assert!(lock.contains("\nversion 2\n"), "{lock}");
    assert!(lock.contains(&hub_line(C1, &sha)), "{lock}");
    assert!(lock.contains(&format!("input \"model.base\" \"sha256:{sha}\"")), "{lock}");
    let dir = p.path().join("store/v1/models").join(&sha);
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), safetensors(1));
    assert!(std::fs::metadata(dir.join("config.json")).unwrap().permissions().readonly());

    // A second apply: everything cached, not one request to the hub.
    let before = hub.requests().len();
    let again = ptb(&p, &hub, &["apply", "experiments/demo.kdl"]);
    assert!(again.ok && again.text.contains("3 cached"), "{}", again.text);
    assert_eq!(hub.requests().len(), before, "{:?}", &hub.requests()[before..]);
    assert_eq!(p.lock_text(), lock);

    // `ptb verify` re-hashes fetched models against their names.
    let v = p.ok(&["verify", "--store", "store"]);
    assert!(v.contains("verify: 4 ok, 0 changed"), "{v}");
    let cfg = dir.join("config.json");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&cfg, "{}").unwrap();
    let v = p.run(&["verify", "--store", "store"]);
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(!v.status.success() && text.contains(&format!("CHANGED v1/models/{sha}: model changed on disk")), "{text}");
    std::fs::write(&cfg, &files[1].bytes).unwrap();

    // The same files as a local `path=` model give the same keys: where the
    // content came from is not an input.
    let local = p.path().join("fixtures/tiny-local");
    std::fs::create_dir_all(&local).unwrap();
    for f in &files {
        std::fs::write(local.join(&f.name), &f.bytes).unwrap();
    }
    p.write_spec(&spec(r#"model tiny path="../fixtures/tiny-local" arch=llama"#));
    let plan = ptb(&p, &hub, &["plan", "experiments/demo.kdl"]);
    assert!(plan.text.contains("Plan: 0 to run, 3 cached, 0 blocked."), "{}", plan.text);
}

#[test]
fn locked_refuses_an_unpinned_ref_and_leaves_the_lockfile_byte_for_byte() {
    let hub = FakeHub::start();
    hub.publish("main", C1, model("0.30", 1));
    hub.publish("v2", C2, model("0.40", 2));
    let p = Project::with_spec(&spec(HUB_MODEL));
    let first = ptb(&p, &hub, &["apply", "experiments/demo.kdl"]);
    assert!(first.ok, "{}", first.text);
    let lock = std::fs::read(p.lockfile()).unwrap();
    let before = hub.requests().len();

    // A ref the lockfile does not pin (another revision of the same repo).
    p.write_spec(&spec(r#"model tiny repo="org/tiny" revision="v2" arch=llama"#));
    let o = ptb(&p, &hub, &["apply", "experiments/demo.kdl", "--locked"]);
    assert!(!o.ok, "{}", o.text);
    assert!(o.text.contains("--locked: 1 hub model(s) are not pinned in the lockfile"), "{}", o.text);
    assert!(o.text.contains("model `tiny` (org/tiny@v2), declared at"), "{}", o.text);
    assert!(o.text.contains("ptb update"), "{}", o.text);
    assert_eq!(std::fs::read(p.lockfile()).unwrap(), lock, "--locked changed the lockfile");
    assert_eq!(hub.requests().len(), before, "--locked asked the hub: {:?}", &hub.requests()[before..]);

    // Pinned but not on this machine (a fresh store), with `main` moved on
    // at the hub: --locked fetches the pinned commit, not the branch's new
    // one, and changes no byte (its stages would rerun, so it then stops).
    hub.publish("main", C2, model("0.40", 2));
    p.write_spec(&spec(HUB_MODEL));
    std::fs::remove_dir_all(p.path().join("store")).unwrap();
    let o = ptb(&p, &hub, &["apply", "experiments/demo.kdl", "--locked"]);
    let reqs = hub.requests();
    assert!(reqs.iter().any(|r| r == &format!("GET /api/models/org/tiny/revision/{C1}?blobs=true")), "{reqs:?}");
    assert!(!reqs.iter().any(|r| r.contains(C2)), "{reqs:?}");
    let sha = content_hash(&p, &model("0.30", 1));
    assert!(p.path().join("store/v1/models").join(sha).is_dir(), "{}", o.text);
    assert_eq!(std::fs::read(p.lockfile()).unwrap(), lock, "{}", o.text);
}

#[test]
fn update_moves_a_branch_to_its_new_commit_and_the_models_stages_replan() {
    let hub = FakeHub::start();
    hub.publish("main", C1, model("0.30", 1));
    let p = Project::with_spec(&spec(HUB_MODEL));
    assert!(ptb(&p, &hub, &["apply", "experiments/demo.kdl"]).ok);
    let new_files = model("0.60", 2);
    hub.publish("main", C2, new_files.clone());

    // The lockfile still pins C1: nothing to do, and no request.
    let before = hub.requests().len();
    let plan = ptb(&p, &hub, &["plan", "experiments/demo.kdl"]);
    assert!(plan.text.contains("Plan: 0 to run, 3 cached, 0 blocked."), "{}", plan.text);
    assert_eq!(hub.requests().len(), before);

    let up = ptb(&p, &hub, &["update", "experiments/demo.kdl"]);
    assert!(up.ok, "{}", up.text);
    assert!(up.text.contains(&format!("model `tiny` (org/tiny@main): {} → {}", &C1[..12], &C2[..12])), "{}", up.text);
    let sha = content_hash(&p, &new_files);
    assert!(p.lock_text().contains(&hub_line(C2, &sha)), "{}", p.lock_text());

    // New content, new keys: every stage of the model runs again, and why says so.
    let why = p.stdout(&["why", "experiments/demo.kdl", "tiny/arith/base/seed=1"]);
    assert!(why.contains("input `model.base` changed"), "{why}");
    let plan = ptb(&p, &hub, &["plan", "experiments/demo.kdl"]);
    assert!(plan.text.contains("Plan: 3 to run, 0 cached, 0 blocked."), "{}", plan.text);
    let again = ptb(&p, &hub, &["update", "experiments/demo.kdl", "tiny"]);
    assert!(again.text.contains("(unchanged)"), "{}", again.text);
    let bad = ptb(&p, &hub, &["update", "experiments/demo.kdl", "nope"]);
    assert!(!bad.ok && bad.text.contains("no hub model named `nope`"), "{}", bad.text);

    // The old content is no lockfile's any more: gc removes it, keeps the new.
    let old_sha = content_hash(&p, &model("0.30", 1));
    let gc = p.ok(&["gc", "lockfiles/demo.lock", "--store", "store"]);
    assert!(gc.contains(&format!("removed v1/models/{old_sha}")), "{gc}");
    assert!(!p.path().join("store/v1/models").join(&old_sha).exists());
    assert!(p.path().join("store/v1/models").join(&sha).is_dir(), "{gc}");
}

/// A mirror that serves other bytes for a pinned commit (every file matching
/// what its own listing says) is caught by the lockfile's content hash.
#[test]
fn content_that_differs_from_the_lockfiles_pin_is_refused_and_the_lockfile_kept() {
    let hub = FakeHub::start();
    hub.publish("main", C1, model("0.30", 1));
    let p = Project::with_spec(&spec(HUB_MODEL));
    assert!(ptb(&p, &hub, &["apply", "experiments/demo.kdl"]).ok);
    let lock = std::fs::read(p.lockfile()).unwrap();
    std::fs::remove_dir_all(p.path().join("store")).unwrap();
    // Pinned, not on this machine: one line per model, with its pinned commit.
    let plan = ptb(&p, &hub, &["plan", "experiments/demo.kdl"]);
    assert!(plan.text.contains(&format!("3 stage(s): model `tiny` (org/tiny@main → {}): not fetched; `ptb apply` fetches it", &C1[..12])), "{}", plan.text);
    hub.publish("main", C1, model("0.99", 9));
    for args in [&["apply", "experiments/demo.kdl", "--locked"][..], &["apply", "experiments/demo.kdl"][..]] {
        let o = ptb(&p, &hub, args);
        assert!(!o.ok, "{}", o.text);
        assert!(o.text.contains(&format!("model `tiny` (org/tiny@main → {C1}): the fetched files hash to sha256:")), "{}", o.text);
        assert!(o.text.contains("but the lockfile lockfiles/demo.lock pins sha256:"), "{}", o.text);
        assert_eq!(std::fs::read(p.lockfile()).unwrap(), lock);
        assert!(std::fs::read_dir(p.path().join("store/v1/models")).map(|d| d.count()).unwrap_or(0) == 0);
    }
}

#[test]
fn bytes_that_do_not_match_the_advertised_sha256_are_refused_and_nothing_is_stored() {
    let hub = FakeHub::start();
    let mut files = model("0.30", 1);
    files[4].advertised = Some("0".repeat(64));
    hub.publish("main", C1, files);
    let p = Project::with_spec(&spec(HUB_MODEL));
    let o = ptb(&p, &hub, &["apply", "experiments/demo.kdl"]);
    assert!(!o.ok, "{}", o.text);
    assert!(o.text.contains(&format!("model.safetensors of org/tiny@{C1}: the downloaded bytes have sha256")), "{}", o.text);
    assert!(o.text.contains("nothing was stored"), "{}", o.text);
    let models = p.path().join("store/v1/models");
    assert!(std::fs::read_dir(&models).map(|d| d.count()).unwrap_or(0) == 0, "something was committed");
    assert!(!p.lockfile().exists() || !p.lock_text().contains("hub \""), "a pin was written");
}

#[test]
fn a_spec_sha256_that_the_fetched_content_does_not_have_names_the_spec_line() {
    let hub = FakeHub::start();
    hub.publish("main", C1, model("0.30", 1));
    let zeros = "0".repeat(64);
    let p = Project::with_spec(&spec(&format!(r#"model tiny repo="org/tiny" revision="main" arch=llama sha256="{zeros}""#)));
    let o = ptb(&p, &hub, &["apply", "experiments/demo.kdl"]);
    assert!(!o.ok, "{}", o.text);
    assert!(o.text.contains("but `sha256=` at "), "{}", o.text);
    assert!(o.text.contains("demo.kdl:2:1 pins sha256:0000"), "{}", o.text);
    assert!(std::fs::read_dir(p.path().join("store/v1/models")).map(|d| d.count()).unwrap_or(0) == 0);
}

#[test]
fn a_missing_revision_is_a_clear_error_naming_repo_and_revision() {
    let hub = FakeHub::start();
    hub.publish("main", C1, model("0.30", 1));
    let p = Project::with_spec(&spec(r#"model tiny repo="org/tiny" revision="no-such-branch" arch=llama"#));
    let o = ptb(&p, &hub, &["apply", "experiments/demo.kdl"]);
    assert!(!o.ok, "{}", o.text);
    assert!(o.text.contains(&format!("org/tiny@no-such-branch: the hub at {} has no such revision (HTTP 404)", hub.url)), "{}", o.text);
    assert!(o.text.contains("check `revision=`"), "{}", o.text);
}

#[test]
fn a_listing_that_names_files_outside_the_model_is_refused() {
    for evil in ["../evil.txt", "/etc/evil", "a/../../evil"] {
        let hub = FakeHub::start();
        let mut files = model("0.30", 1);
        files.push(File { name: evil.into(), bytes: b"owned".to_vec(), lfs: false, advertised: None });
        hub.publish("main", C1, files);
        let p = Project::with_spec(&spec(HUB_MODEL));
        let o = ptb(&p, &hub, &["apply", "experiments/demo.kdl"]);
        assert!(!o.ok, "{}", o.text);
        assert!(o.text.contains(&format!("the hub lists a file named `{evil}`, which is not a plain relative path; refused")), "{}", o.text);
        assert!(!hub.requests().iter().any(|r| r.contains("/resolve/")), "downloaded despite a hostile listing: {:?}", hub.requests());
        assert!(!p.path().join("store/v1/evil.txt").exists() && !p.path().join("store/evil.txt").exists() && !Path::new("/etc/evil").exists());
    }
}

/// A download cut off in an earlier run (ptb killed, the machine rebooted)
/// resumes from the partial file it left in the store's build area: the
/// next apply asks only for the missing bytes.
#[test]
fn a_download_left_by_a_killed_run_resumes_where_it_stopped() {
    let hub = FakeHub::start();
    let files = model("0.30", 1);
    hub.publish("main", C1, files.clone());
    let p = Project::with_spec(&spec(HUB_MODEL));
    let parts = p.path().join(format!("store/v1/.tmp/hub-org-tiny-{C1}/parts"));
    std::fs::create_dir_all(&parts).unwrap();
    let weights = safetensors(1);
    let third = weights.len() / 3;
    std::fs::write(parts.join(&sha256_hex(b"model.safetensors")[..32]), &weights[..third]).unwrap();
    let o = ptb(&p, &hub, &["apply", "experiments/demo.kdl"]);
    assert!(o.ok, "{}", o.text);
    let weight_reqs: Vec<String> = hub.requests().into_iter().filter(|r| r.starts_with("GET /cdn/") && r.contains("model.safetensors")).collect();
    assert_eq!(weight_reqs, [format!("GET /cdn/org/tiny/{C1}/model.safetensors range=bytes={third}-")]);
    let sha = content_hash(&p, &files);
    assert_eq!(std::fs::read(p.path().join("store/v1/models").join(&sha).join("model.safetensors")).unwrap(), weights);
    assert!(!p.path().join(format!("store/v1/.tmp/hub-org-tiny-{C1}")).exists(), "the build area was not cleaned up");
}

/// The pinned hash names a directory in the store: a hand-edited pin that is
/// not a sha256 (here a path) is no pin at all, never a path.
#[test]
fn a_pin_that_is_not_a_hash_is_no_pin() {
    let hub = FakeHub::start();
    hub.publish("main", C1, model("0.30", 1));
    let p = Project::with_spec(&spec(HUB_MODEL));
    assert!(ptb(&p, &hub, &["apply", "experiments/demo.kdl"]).ok);
    let sha = content_hash(&p, &model("0.30", 1));
    let lock = p.lock_text().replace(&format!("commit=\"{C1}\" sha256=\"sha256:{sha}\""), &format!("commit=\"{C1}\" sha256=\"sha256:../../../etc\""));
    std::fs::write(p.lockfile(), &lock).unwrap();
    let plan = ptb(&p, &hub, &["plan", "experiments/demo.kdl"]);
    assert!(plan.text.contains("model `tiny` (org/tiny@main): not resolved in the lockfile"), "{}", plan.text);
    let o = ptb(&p, &hub, &["apply", "experiments/demo.kdl", "--locked"]);
    assert!(!o.ok && o.text.contains("are not pinned in the lockfile"), "{}", o.text);
    // A plain apply re-resolves and writes a good pin again.
    assert!(ptb(&p, &hub, &["apply", "experiments/demo.kdl"]).ok);
    assert!(p.lock_text().contains(&hub_line(C1, &sha)), "{}", p.lock_text());
}
