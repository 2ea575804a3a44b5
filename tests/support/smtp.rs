//! A minimal SMTP server on loopback for tests: enough of RFC 5321 for a real client to
//! deliver (EHLO/HELO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), plain text
//! only, recording each envelope and raw message. Plus a small MIME reader to look into
//! what was received.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;

/// One message as the server received it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub helo: String,
    /// (user, password) when the client authenticated.
    pub auth: Option<(String, String)>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message after DATA, dot-unstuffed, CRLF line ends.
    pub data: String,
}

/// A running server; stops when dropped.
pub struct SmtpServer {
    pub addr: SocketAddr,
    received: Receiver<Received>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind SMTP test server");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    // One client at a time is all the tests need.
                    let _ = session(stream, &tx);
                }
            }
        });
        SmtpServer {
            addr,
            received: rx,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, as `notify.email.smtp` takes it.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The next message delivered, waiting at most a few seconds.
    pub fn next(&self) -> Option<Received> {
        self.received.recv_timeout(Duration::from_secs(10)).ok()
    }

    /// A message already delivered, if any: a client that exited has sent all it would.
    pub fn try_next(&self) -> Option<Received> {
        self.received.recv_timeout(Duration::from_millis(200)).ok()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn session(stream: TcpStream, tx: &Sender<Received>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    let mut reply = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
    reply("220 localhost plumbline test SMTP")?;
    let mut current = Received::default();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']).to_string();
        let upper = command.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("");
        match verb {
            "EHLO" => {
                current.helo = command[4..].trim().to_string();
                reply("250-localhost")?;
                reply("250-8BITMIME")?;
                reply("250-AUTH PLAIN LOGIN")?;
                reply("250 SIZE 10485760")?;
            }
            "HELO" => {
                current.helo = command[4..].trim().to_string();
                reply("250 localhost")?;
            }
            "AUTH" => {
                let args: Vec<&str> = command.split(' ').skip(1).collect();
                let mechanism = args.first().map(|m| m.to_ascii_uppercase());
                match mechanism.as_deref() {
                    Some("PLAIN") => {
                        let encoded = match args.get(1) {
                            Some(initial) => initial.to_string(),
                            None => {
                                reply("334 ")?;
                                read_line(&mut lines)?
                            }
                        };
                        let decoded = decode_b64(&encoded);
                        let mut fields = decoded.split('\0').skip(1);
                        let user = fields.next().unwrap_or("").to_string();
                        let pass = fields.next().unwrap_or("").to_string();
                        current.auth = Some((user, pass));
                        reply("235 2.7.0 Authentication successful")?;
                    }
                    Some("LOGIN") => {
                        let user = match args.get(1) {
                            Some(initial) => decode_b64(initial),
                            None => {
                                reply("334 VXNlcm5hbWU6")?;
                                decode_b64(&read_line(&mut lines)?)
                            }
                        };
                        reply("334 UGFzc3dvcmQ6")?;
                        let pass = decode_b64(&read_line(&mut lines)?);
                        current.auth = Some((user, pass));
                        reply("235 2.7.0 Authentication successful")?;
                    }
                    _ => reply("504 5.5.4 mechanism not supported")?,
                }
            }
            "MAIL" => {
                current.mail_from = angle(&command);
                current.rcpt_to.clear();
                reply("250 2.1.0 OK")?;
            }
            "RCPT" => {
                current.rcpt_to.push(angle(&command));
                reply("250 2.1.5 OK")?;
            }
            "DATA" => {
                reply("354 end data with <CR><LF>.<CR><LF>")?;
                let mut data = String::new();
                loop {
                    let l = read_line(&mut lines)?;
                    if l == "." {
                        break;
                    }
                    let l = l.strip_prefix('.').unwrap_or(&l);
                    data.push_str(l);
                    data.push_str("\r\n");
                }
                current.data = data;
                let _ = tx.send(current.clone());
                reply("250 2.0.0 queued")?;
            }
            "RSET" => {
                current.mail_from.clear();
                current.rcpt_to.clear();
                reply("250 2.0.0 OK")?;
            }
            "NOOP" => reply("250 2.0.0 OK")?,
            "QUIT" => {
                reply("221 2.0.0 bye")?;
                return Ok(());
            }
            _ => reply("502 5.5.2 command not implemented")?,
        }
    }
}

/// Reads one line without its line end; end of stream is an error (the client went away).
fn read_line(lines: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    if lines.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The address between `<` and `>` of `MAIL FROM:<a>` / `RCPT TO:<b>`.
fn angle(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_string()
}

fn decode_b64(text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A parsed MIME entity: headers (names lower-cased, unfolded) and decoded body.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Sub-parts of a multipart entity.
    pub parts: Vec<Part>,
}

impl Part {
    pub fn parse(raw: &str) -> Part {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let mut part = Part {
            headers,
            body: String::new(),
            parts: Vec::new(),
        };
        let content_type = part.header("content-type").unwrap_or("").to_string();
        if content_type.to_ascii_lowercase().starts_with("multipart/") {
            let boundary = parameter(&content_type, "boundary").expect("multipart boundary");
            let delimiter = format!("--{boundary}");
            let mut sections = body.split(delimiter.as_str()).skip(1);
            for section in sections.by_ref() {
                if section.starts_with("--") {
                    break;
                }
                let section = section.strip_prefix('\n').unwrap_or(section);
                let section = section.strip_suffix('\n').unwrap_or(section);
                part.parts.push(Part::parse(section));
            }
        } else {
            let encoding = part
                .header("content-transfer-encoding")
                .unwrap_or("7bit")
                .to_ascii_lowercase();
            part.body = match encoding.as_str() {
                "base64" => {
                    let compact: String = body.split_whitespace().collect();
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .expect("base64 body");
                    String::from_utf8(bytes).expect("UTF-8 body")
                }
                "quoted-printable" => decode_quoted_printable(body),
                _ => body.to_string(),
            };
        }
        part
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first leaf whose content type starts with `mime` (e.g. `text/html`).
    pub fn find(&self, mime: &str) -> Option<&Part> {
        if self.parts.is_empty() {
            let ct = self.header("content-type").unwrap_or("text/plain");
            return ct.to_ascii_lowercase().starts_with(mime).then_some(self);
        }
        self.parts.iter().find_map(|p| p.find(mime))
    }
}

fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn decode_quoted_printable(body: &str) -> String {
    let mut bytes = Vec::new();
    for line in body.split('\n') {
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let raw = line.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'=' && i + 3 <= raw.len() {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    bytes.push(b);
                    i += 3;
                    continue;
                }
            }
            bytes.push(raw[i]);
            i += 1;
        }
        if !soft {
            bytes.push(b'\n');
        }
    }
    String::from_utf8(bytes).expect("UTF-8 body")
}
