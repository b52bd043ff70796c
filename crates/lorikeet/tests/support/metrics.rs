//! Reading a server's Prometheus `/metrics` text.

use std::time::Duration;

/// The `/metrics` text of the server at `base` (`http://127.0.0.1:PORT`), or `None`
/// when it does not answer.
pub async fn scrape(base: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.text().await.ok()
}

/// The sum of the samples of `family` (an exact metric name, e.g.
/// `lorikeet_storage_ops_dropped_total`) whose labels include every `labels` pair.
/// A family not rendered (nothing counted yet) sums to 0.
pub fn sum(text: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name_labels, value) = l.rsplit_once(' ')?;
            let (name, label_text) = match name_labels.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (name_labels, ""),
            };
            if name != family {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Every sample of `family` with its label text, e.g. `("reason=\"queue_full\"", 3.0)`.
pub fn samples(text: &str, family: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name_labels, value) = l.rsplit_once(' ')?;
            let (name, label_text) = match name_labels.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (name_labels, ""),
            };
            (name == family).then(|| (label_text.to_owned(), value.parse().unwrap_or(0.0)))
        })
        .collect()
}
