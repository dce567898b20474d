//! A real MQTT broker for the tests: mosquitto from Debian's package, and a
//! subscriber that collects what is published.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

/// mosquitto from Debian's package, on `addr`, until dropped.
pub struct Broker {
    child: Child,
}

impl Broker {
    pub fn start(addr: SocketAddr, dir: &Path) -> Broker {
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mosquitto is not installed: run examples/setup.sh --tests (or apt-get install mosquitto)");
        let config = dir.join(format!("mosquitto-{}.conf", addr.port()));
        std::fs::write(
            &config,
            format!("listener {} {}\nallow_anonymous true\n", addr.port(), addr.ip()),
        )
        .unwrap();
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Broker { child };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("mosquitto did not start listening on {addr}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message the subscriber got.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: String,
    pub properties: Vec<(String, String)>,
}

/// Subscribe to `building/#` on `addr` and collect what arrives; returns
/// once the broker confirmed the subscription.
pub async fn subscribe(addr: SocketAddr) -> Arc<Mutex<Vec<Message>>> {
    let messages = Arc::new(Mutex::new(Vec::new()));
    let log = messages.clone();
    let (subscribed, confirmed) = tokio::sync::oneshot::channel();
    let mut subscribed = Some(subscribed);
    let mut options = MqttOptions::new("test-subscriber", addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client.subscribe("building/#", QoS::AtLeastOnce).await.unwrap();
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => log.lock().unwrap().push(Message {
                    topic: String::from_utf8_lossy(&publish.topic).into_owned(),
                    payload: String::from_utf8_lossy(&publish.payload).into_owned(),
                    properties: publish.properties.map(|p| p.user_properties).unwrap_or_default(),
                }),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), confirmed)
        .await
        .expect("subscribed within 10 s")
        .unwrap();
    messages
}

pub async fn wait_for(messages: &Mutex<Vec<Message>>, n: usize) -> Vec<Message> {
    for _ in 0..500 {
        if messages.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    messages.lock().unwrap().clone()
}
