//! A small OpenAI-compatible chat-completions server on 127.0.0.1 for the
//! judge tests: scripted or computed replies, every request recorded. Each
//! server handles a bounded number of requests and stops by itself after a
//! deadline, so a failing test never leaves it running.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

pub fn ok(content: &str) -> Reply {
    let body = json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]});
    Reply { status: 200, headers: vec![], body: body.to_string(), delay: Duration::ZERO }
}

pub fn status(code: u16) -> Reply {
    Reply { status: code, headers: vec![], body: json!({"error": {"message": "nope"}}).to_string(), delay: Duration::ZERO }
}

pub struct Seen {
    pub headers: Vec<String>,
    pub body: Value,
}

pub struct Server {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub max_in_flight: Arc<AtomicUsize>,
}

/// Serve `script` in order (then 500s), at most `script.len() + 4` requests,
/// for at most 20 s.
pub fn serve(script: Vec<Reply>) -> Server {
    let n = AtomicUsize::new(0);
    let limit = script.len() + 4;
    serve_fn(limit, move |_| script.get(n.fetch_add(1, Ordering::SeqCst)).cloned().unwrap_or_else(|| status(500)))
}

/// Serve replies computed from each request body, at most `limit` requests,
/// for at most 20 s.
pub fn serve_fn(limit: usize, respond: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Server {
    serve_for(limit, Duration::from_secs(20), respond)
}

/// `serve_fn` with its own lifetime.
pub fn serve_for(limit: usize, lifetime: Duration, respond: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let (seen2, max2) = (seen.clone(), max_in_flight.clone());
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        let deadline = Instant::now() + lifetime;
        let mut served = 0;
        while served < limit && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    served += 1;
                    let (seen, inf, max, respond) = (seen2.clone(), in_flight.clone(), max2.clone(), respond.clone());
                    std::thread::spawn(move || {
                        let now = inf.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        handle(stream, &*respond, &seen);
                        inf.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server { url, seen, max_in_flight }
}

fn handle(stream: TcpStream, respond: &(dyn Fn(&Value) -> Reply + Send + Sync), seen: &Mutex<Vec<Seen>>) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = Vec::new();
    let mut len = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        headers.push(line.trim_end().to_string());
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = respond(&body);
    seen.lock().unwrap().push(Seen { headers, body });
    std::thread::sleep(reply.delay);
    let mut out = format!("HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", reply.status, reply.body.len());
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&reply.body);
    let mut s = stream;
    let _ = s.write_all(out.as_bytes());
}
