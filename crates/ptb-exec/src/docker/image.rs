//! Image references → content digests, and pulls (only by digest).

use super::{DockerExecutor, errors};
use crate::{ExecError, ImageLookupError, ImageResolver, ResolvedImage};
use bollard::Docker;
use futures_util::StreamExt;
use ptb_core::spec::PullPolicy;

impl DockerExecutor {
    /// The local image id and the registry digest of `image`, without
    /// pulling. A missing image is [`ExecError::ImageMissing`].
    pub async fn resolve_image(&self, image: &str) -> Result<ResolvedImage, ExecError> {
        resolve_with(&self.docker, &self.socket, image).await
    }

    /// Pulls `reference`, which must be pinned by digest (`name@sha256:…`):
    /// a tag can point at different content tomorrow, which would make the
    /// stage key a lie.
    pub async fn pull(&self, reference: &str) -> Result<ResolvedImage, ExecError> {
        if !reference.contains("@sha256:") {
            return Err(ExecError::Engine(format!(
                "refusing to pull `{reference}` by tag: pin it by digest (`name@sha256:…`, see `docker image inspect --format '{{{{.RepoDigests}}}}'`)"
            )));
        }
        let opts = bollard::query_parameters::CreateImageOptionsBuilder::default().from_image(reference).build();
        let mut progress = self.docker.create_image(Some(opts), None, None);
        while let Some(item) = progress.next().await {
            item.map_err(|e| errors::engine(e, &self.socket, &format!("pulling `{reference}`")))?;
        }
        self.resolve_image(reference).await
    }
}

impl DockerExecutor {
    /// What apply calls before running a stage on `image`: resolves it and,
    /// only if it is missing, the spec says `pull "if-missing"`, and the
    /// reference is pinned by digest, pulls it.
    pub async fn ensure_image(&self, image: &str, pull: PullPolicy) -> Result<ResolvedImage, ExecError> {
        match self.resolve_image(image).await {
            Err(ExecError::ImageMissing { .. }) if pull == PullPolicy::IfMissing => self.pull(image).await,
            other => other,
        }
    }
}

async fn resolve_with(docker: &Docker, socket: &str, image: &str) -> Result<ResolvedImage, ExecError> {
    let info = match docker.inspect_image(image).await {
        Ok(info) => info,
        Err(e) if errors::is_not_found(&e) => return Err(ExecError::ImageMissing { image: image.to_string() }),
        Err(e) => return Err(errors::engine(e, socket, &format!("inspecting image `{image}`"))),
    };
    let id = info.id.ok_or_else(|| ExecError::Engine(format!("the engine returned no id for image `{image}`")))?;
    let digests = info.repo_digests.unwrap_or_default();
    Ok(ResolvedImage { id, repo_digest: pick_repo_digest(image, &digests) })
}

impl ImageResolver for DockerExecutor {
    /// Blocking, for the pure planner: runs on its own thread and runtime
    /// so it works both inside and outside an async context.
    fn resolve(&self, image: &str) -> Result<ResolvedImage, ImageLookupError> {
        let (socket, version, image) = (self.socket.clone(), self.docker.client_version(), image.to_string());
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| ExecError::Io { context: "starting a runtime to resolve images".into(), source })?;
            // A connection of its own: bollard's pool is tied to the runtime
            // that first used it.
            let docker = Docker::connect_with_unix(&socket, super::REQUEST_TIMEOUT_S, &version)
                .map_err(|e| errors::engine(e, &socket, "connecting to the Docker engine"))?;
            rt.block_on(resolve_with(&docker, &socket, &image))
        });
        let resolved = worker.join().unwrap_or_else(|_| Err(ExecError::Engine("image resolution thread panicked".into())));
        resolved.map_err(|e| match e {
            ExecError::ImageMissing { image } => ImageLookupError::Missing { image },
            other => ImageLookupError::Engine(other.to_string()),
        })
    }
}

/// The repository part of a reference: `reg:5000/a/b:tag` → `reg:5000/a/b`.
pub fn image_repo(reference: &str) -> &str {
    if let Some((repo, _)) = reference.split_once('@') {
        return repo;
    }
    match reference.rfind(':') {
        // A colon before the last `/` belongs to a registry port.
        Some(i) if !reference[i..].contains('/') => &reference[..i],
        _ => reference,
    }
}

/// The RepoDigest for the repository the reference names (an image pushed
/// to several registries has one per repository); else the first one.
pub fn pick_repo_digest(reference: &str, digests: &[String]) -> Option<String> {
    let want = image_repo(reference);
    digests.iter().find(|d| image_repo(d) == want).or_else(|| digests.first()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_of_references() {
        assert_eq!(image_repo("busybox"), "busybox");
        assert_eq!(image_repo("ptb-test/busybox:1"), "ptb-test/busybox");
        assert_eq!(image_repo("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b");
        assert_eq!(image_repo("127.0.0.1:5000/a/b:2"), "127.0.0.1:5000/a/b");
        assert_eq!(image_repo("r:5000/a@sha256:ab"), "r:5000/a");
    }

    #[test]
    fn picks_the_digest_of_the_named_repository() {
        let d = vec!["other/x@sha256:11".to_string(), "127.0.0.1:5000/a/b@sha256:22".to_string()];
        assert_eq!(pick_repo_digest("127.0.0.1:5000/a/b:1", &d).as_deref(), Some("127.0.0.1:5000/a/b@sha256:22"));
        assert_eq!(pick_repo_digest("local/only:1", &d).as_deref(), Some("other/x@sha256:11"));
        assert_eq!(pick_repo_digest("local/only:1", &[]), None);
    }
}
