//! Apache Kafka for tests, as `scripts/lib.sh` installs it (jars fetched once by `ensure_kafka`
//! into `${CPQ_CACHE_DIR:-~/.cache/cpq-platform}/kafka-<version>/libs`):
//!
//! - [`kafka_tool`]: one of Kafka's own command-line classes (`TopicCommand`, `ConfigCommand`,
//!   `ConsumerGroupCommand`, ...), as `kafka_tool` in `scripts/lib.sh` runs it.
//! - [`PrivateKafka`]: a broker of a test's own (one KRaft node, broker and controller, on two
//!   free loopback ports, its data and logs in a temporary folder), for a test that must stop,
//!   pause or break the broker without disturbing the shared one on 127.0.0.1:9092. It is killed
//!   when dropped.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{repo_root, KillOnDrop};

/// The value of `NAME=value` (or `NAME="value"`) in `scripts/lib.sh`, so that the version and
/// the folder layout are written down once.
fn lib_sh(name: &str) -> String {
    let path = repo_root().join("scripts/lib.sh");
    let text = std::fs::read_to_string(&path).unwrap();
    let prefix = format!("{name}=");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{} has no {name}= line", path.display()))
}

/// `$CPQ_KAFKA_HOME` of `scripts/lib.sh`: the jars in `libs/`, the shared broker's data in `data/`.
pub fn kafka_home() -> PathBuf {
    let cache = std::env::var_os("CPQ_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/cpq-platform")
        });
    cache.join(format!("kafka-{}", lib_sh("CPQ_KAFKA_VERSION")))
}

/// The `-cp` argument for Kafka's jars; panics, naming the remedy, when they are not installed.
fn classpath() -> String {
    let libs = kafka_home().join("libs");
    let jar = libs.join(format!("kafka_2.13-{}.jar", lib_sh("CPQ_KAFKA_VERSION")));
    assert!(
        jar.exists(),
        "Apache Kafka is not installed ({} is missing): scripts/test.sh installs it",
        jar.display()
    );
    // java expands a trailing `*` itself: no shell needed.
    format!("{}/*", libs.display())
}

/// One of Kafka's command-line classes, for example
/// `kafka_tool("org.apache.kafka.tools.TopicCommand").args(["--bootstrap-server", .., "--list"])`.
/// Its log (warnings and errors) goes to stderr, so stdout carries only the tool's output.
pub fn kafka_tool(main_class: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg("-Xmx256m")
        .arg("-Djava.awt.headless=true")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            repo_root()
                .join("deploy/local/kafka/tools-log4j2.yaml")
                .display()
        ))
        .arg("-cp")
        .arg(classpath())
        .arg(main_class)
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion and returns its stdout; panics with its stderr when it fails.
pub fn run_tool(cmd: &mut Command) -> String {
    let out = cmd.output().expect("java runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A random KRaft cluster id (16 bytes, URL-safe base64 without padding, as
/// `StorageTool random-uuid` prints one).
fn cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A broker of the test's own: the repository's `deploy/local/kafka/server.properties` and
/// `log4j2.yaml`, the jars `scripts/lib.sh` installed, storage formatted with the same
/// `kafka.tools.StorageTool format --standalone`; its own broker and controller ports and a
/// temporary folder for data (`data/`) and logs (`kafka.log`, `kafka.out`). Killed (SIGKILL) and
/// its folder removed when dropped; the folder is kept, and named, when the test panicked.
pub struct PrivateKafka {
    process: KillOnDrop,
    /// `127.0.0.1:<port>`, for `KafkaConfig::bootstrap_servers`.
    pub bootstrap_servers: String,
    /// Data and logs.
    pub dir: PathBuf,
}

impl PrivateKafka {
    /// Formats, starts and waits (at most 120 s) until the broker has started.
    pub async fn start() -> PrivateKafka {
        tokio::task::spawn_blocking(PrivateKafka::start_blocking)
            .await
            .unwrap()
    }

    /// [`PrivateKafka::start`] for code outside a runtime.
    pub fn start_blocking() -> PrivateKafka {
        let classpath = classpath();
        let deploy = repo_root().join("deploy/local/kafka");
        let dir = std::env::temp_dir().join(format!("cpq-kafka-{}", uuid::Uuid::new_v4().simple()));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let (port, controller_port) = (free_port(), free_port());

        let template = std::fs::read_to_string(deploy.join("server.properties")).unwrap();
        assert!(
            template.contains("127.0.0.1:9093") && template.contains("@KAFKA_PORT@"),
            "deploy/local/kafka/server.properties no longer has the controller on 127.0.0.1:9093 \
             and the broker on @KAFKA_PORT@: update PrivateKafka"
        );
        let props = dir.join("server.properties");
        std::fs::write(
            &props,
            template
                .replace("@KAFKA_PORT@", &port.to_string())
                .replace("@KAFKA_DATA_DIR@", &data.display().to_string())
                .replace("127.0.0.1:9093", &format!("127.0.0.1:{controller_port}")),
        )
        .unwrap();

        run_tool(kafka_tool("kafka.tools.StorageTool").args([
            "format",
            "--standalone",
            "--ignore-formatted",
            "--cluster-id",
            &cluster_id(),
            "--config",
            &props.display().to_string(),
        ]));

        let out = std::fs::File::create(dir.join("kafka.out")).unwrap();
        let child = Command::new("java")
            .args(["-Xms128m", "-Xmx512m", "-server", "-XX:+UseG1GC"])
            .args(["-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"])
            .arg(format!("-Dkafka.logs.dir={}", dir.display()))
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                deploy.join("log4j2.yaml").display()
            ))
            .args(["-cp", &classpath, "kafka.Kafka"])
            .arg(&props)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("java starts");
        let mut node = PrivateKafka {
            process: KillOnDrop(child),
            bootstrap_servers: format!("127.0.0.1:{port}"),
            dir,
        };

        // Kafka opens its port before it serves: "Kafka Server started" is logged once it does.
        let started = Instant::now();
        loop {
            let mut log = String::new();
            if let Ok(mut f) = std::fs::File::open(node.dir.join("kafka.log")) {
                let _ = f.read_to_string(&mut log);
            }
            if log.contains("Kafka Server started")
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return node;
            }
            if let Ok(Some(status)) = node.process.0.try_wait() {
                panic!(
                    "the private Kafka broker exited ({status}) while starting; see {}",
                    node.dir.display()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the private Kafka broker did not start within 120 s; see {}",
                node.dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The broker's JVM.
    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// SIGSTOP: the JVM stops answering (connections stay open, nothing is lost), as a broker
    /// behind a network partition or in a long pause does.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`PrivateKafka::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} {}", self.pid());
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        let _ = self.process.0.kill();
        let _ = self.process.0.wait();
        if std::thread::panicking() {
            eprintln!(
                "the private Kafka broker's data and logs are kept in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cluster_ids_are_sixteen_bytes_of_url_safe_base64() {
        let id = super::cluster_id();
        assert_eq!(id.len(), 22, "{id}");
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
