//! What `/admin/status` shows of the cluster: this node and what it owns,
//! the server it talks to, every stream and every consumer's backlog.

use super::Cluster;

impl Cluster {
    /// What `/admin/status` shows of the cluster: this node, the server it
    /// talks to, every stream and every consumer's backlog.
    pub(super) async fn status(&self, owns: Vec<u32>, floors: Vec<(u32, u64, bool)>) -> serde_json::Value {
        let info = self.client.server_info();
        let mut streams = Vec::new();
        for wanted in self.wanted_streams() {
            let entry = match self.js.get_stream(&wanted.name).await {
                Ok(mut stream) => match stream.info().await {
                    Ok(info) => serde_json::json!({
                        "name": wanted.name,
                        "messages": info.state.messages,
                        "replicas": info.config.num_replicas,
                        "leader": info.cluster.as_ref().and_then(|c| c.leader.clone()),
                    }),
                    Err(e) => serde_json::json!({ "name": wanted.name, "error": e.to_string() }),
                },
                Err(e) => serde_json::json!({ "name": wanted.name, "error": e.to_string() }),
            };
            streams.push(entry);
        }
        let mut consumers = Vec::new();
        for (stream, config) in self.wanted_consumers() {
            let name = config.durable_name.unwrap_or_default();
            let entry = match self.js.get_stream_no_info(&stream).await {
                Ok(handle) => match handle.consumer_info(&name).await {
                    Ok(info) => serde_json::json!({
                        "stream": stream,
                        "name": name,
                        "pending": info.num_pending,
                        "ack_pending": info.num_ack_pending,
                        "redelivered": info.num_redelivered,
                    }),
                    Err(e) => serde_json::json!({ "stream": stream, "name": name, "error": e.to_string() }),
                },
                Err(e) => serde_json::json!({ "stream": stream, "name": name, "error": e.to_string() }),
            };
            consumers.push(entry);
        }
        serde_json::json!({
            "backend": "nats",
            "node": self.settings.node,
            "server": { "name": info.server_name, "version": info.version, "cluster": info.cluster },
            "connection": format!("{:?}", self.client.connection_state()),
            "replicas": self.settings.replicas,
            "partitions": self.layout().partitions,
            "owns": owns,
            // How far each owned partition's events are written.
            "floors": floors
                .iter()
                .map(|(p, floor, clean)| serde_json::json!({ "partition": p, "floor": floor, "clean": clean }))
                .collect::<Vec<_>>(),
            "streams": streams,
            "consumers": consumers,
        })
    }
}
