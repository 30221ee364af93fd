//! Keeping an agent's /work in its store entry: what an adversarial agent
//! can leave there (links out of it, a FIFO, a socket, setuid files, large
//! weights, an extensionless safetensors blob as the Hugging Face cache
//! stores them) and what the copy makes of each. Real files, real FIFOs and
//! sockets; no mocks.

use ptb_exec::keep::{KeepOptions, keep_workspace};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A safetensors file's first bytes: the header length, then a JSON object.
fn safetensors_bytes(len: usize) -> Vec<u8> {
    let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header);
    v.resize(len, 7);
    v
}

#[test]
fn the_copy_keeps_code_and_data_and_never_follows_links_or_special_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, entry) = (tmp.path().join("work"), tmp.path().join("entry"));
    let outside = tmp.path().join("secret.txt");
    write(&outside, b"the host's file\n");
    write(&work.join("train.py"), b"print('train')\n");
    write(&work.join("data/train.jsonl"), b"{\"q\": \"1+1\"}\n");
    write(&work.join("ckpt/model.safetensors"), &safetensors_bytes(5000));
    write(&work.join("ckpt/optimizer.pt"), &[1u8; 3000]);
    write(&work.join("adapter/adapter.safetensors"), &safetensors_bytes(500));
    // The Hugging Face cache keeps weights as extensionless blobs.
    write(&work.join(".cache/huggingface/hub/models--x--y/blobs/0123abcd"), &safetensors_bytes(4000));
    // A large data file that is not weights is kept whatever its size.
    write(&work.join("data/big.csv"), &b"a,b\n".repeat(2000));
    std::os::unix::fs::symlink(&outside, work.join("link-out")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), work.join("dir-link")).unwrap();
    std::os::unix::fs::symlink("blobs/0123abcd", work.join(".cache/huggingface/hub/models--x--y/snap")).unwrap();
    let fifo = std::ffi::CString::new(work.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: a plain syscall on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let _sock = std::os::unix::net::UnixListener::bind(work.join("sock")).unwrap();
    write(&work.join("suid.sh"), b"#!/bin/sh\nid\n");
    std::fs::set_permissions(work.join("suid.sh"), std::fs::Permissions::from_mode(0o6777)).unwrap();

    std::fs::create_dir(&entry).unwrap();
    let (ws, manifest) = ptb_exec::keep::paths(&entry);
    let m = keep_workspace(&work, &ws, &manifest, KeepOptions { weights_over: 1024 }).unwrap();

    // Code and data are there, byte for byte.
    assert_eq!(std::fs::read(ws.join("train.py")).unwrap(), b"print('train')\n");
    assert_eq!(std::fs::read(ws.join("data/train.jsonl")).unwrap(), b"{\"q\": \"1+1\"}\n");
    assert_eq!(std::fs::read(ws.join("data/big.csv")).unwrap().len(), 8000);
    // A small adapter is kept; large weights are listed with size and sha256.
    assert!(ws.join("adapter/adapter.safetensors").is_file());
    let omitted: Vec<(&str, u64)> = m.omitted.iter().map(|o| (o.path.as_str(), o.size)).collect();
    assert_eq!(omitted, [(".cache/huggingface/hub/models--x--y/blobs/0123abcd", 4000), ("ckpt/model.safetensors", 5000), ("ckpt/optimizer.pt", 3000)]);
    assert_eq!(m.omitted[1].sha256, ptb_core::hash::sha256_hex(&safetensors_bytes(5000)));
    for o in &m.omitted {
        assert!(std::fs::symlink_metadata(ws.join(&o.path)).is_err(), "{} was copied", o.path);
    }
    // Links are links, with the same target, and were not followed.
    for (name, target) in [("link-out", outside.to_str().unwrap()), ("dir-link", tmp.path().to_str().unwrap())] {
        let md = std::fs::symlink_metadata(ws.join(name)).unwrap();
        assert!(md.file_type().is_symlink(), "{name}");
        assert_eq!(std::fs::read_link(ws.join(name)).unwrap().to_str().unwrap(), target);
        assert!(m.symlinks.iter().any(|l| l.path == name && l.target == target), "{:?}", m.symlinks);
    }
    // FIFO and socket: skipped and listed (reading a FIFO would block).
    for name in ["pipe", "sock"] {
        assert!(std::fs::symlink_metadata(ws.join(name)).is_err(), "{name} was copied");
        assert!(m.skipped.iter().any(|s| s.path == name), "{name}: {:?}", m.skipped);
    }
    // setuid/setgid dropped, and said so; the copy is not group/world writable.
    let mode = std::fs::metadata(ws.join("suid.sh")).unwrap().mode();
    assert_eq!(mode & 0o7022, 0, "mode {mode:o}");
    assert!(mode & 0o100 != 0, "the owner's execute bit stays");
    assert_eq!(m.stripped, ["suid.sh"]);
    // The manifest on disk says the same.
    let on_disk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(on_disk["omitted"].as_array().unwrap().len(), 3);
    assert_eq!(on_disk["weights_over"], 1024);
    // Nothing outside the workspace was touched or copied into it.
    assert_eq!(std::fs::read(&outside).unwrap(), b"the host's file\n");
}

#[test]
fn a_missing_work_dir_keeps_an_empty_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, manifest) = ptb_exec::keep::paths(tmp.path());
    let m = keep_workspace(&tmp.path().join("nope"), &ws, &manifest, KeepOptions { weights_over: 1 }).unwrap();
    assert_eq!(m.files, 0);
    assert!(ws.is_dir() && manifest.is_file());
}

/// The agent picks the depth: a deep tree is copied without recursion.
#[test]
fn a_deep_tree_is_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    let deep = (0..1800).fold(work.clone(), |p, _| p.join("d"));
    write(&deep.join("x.txt"), b"deep\n");
    let (ws, manifest) = ptb_exec::keep::paths(tmp.path());
    let m = keep_workspace(&work, &ws, &manifest, KeepOptions { weights_over: 1 << 20 }).unwrap();
    assert_eq!(m.files, 1);
    let copied = (0..1800).fold(ws.clone(), |p, _| p.join("d")).join("x.txt");
    assert_eq!(std::fs::read(copied).unwrap(), b"deep\n");
}
