//! Credentials for a registry from the user's docker config (`$DOCKER_CONFIG/config.json`,
//! credHelpers, credsStore) or podman's auth.json, through docker_credential.
use crate::error::{Error, Result};
use docker_credential::{CredentialRetrievalError as E, DockerCredential};
use oci_client::secrets::RegistryAuth;

/// Keys docker and podman file a registry's credentials under.
fn keys(host: &str) -> Vec<String> {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            vec!["https://index.docker.io/v1/".into(), "docker.io".into(), "index.docker.io".into()]
        }
        h => vec![h.to_string(), format!("https://{h}"), format!("http://{h}")],
    }
}

/// Basic credentials when configured, else anonymous (the bearer flow then asks for an
/// anonymous token when the registry wants one). A broken helper is an error, not anonymous.
pub fn for_registry(host: &str) -> Result<RegistryAuth> {
    for k in keys(host) {
        for lookup in [docker_credential::get_credential, docker_credential::get_podman_credential] {
            match lookup(&k) {
                Ok(DockerCredential::UsernamePassword(u, p)) => return Ok(RegistryAuth::Basic(u, p)),
                Ok(DockerCredential::IdentityToken(_)) => {
                    return Err(Error::Other(format!(
                        "registry {host}: the stored credential is an identity token, which imgslim cannot exchange; log in with a username and password"
                    )))
                }
                Err(E::NoCredentialConfigured | E::ConfigNotFound | E::ConfigReadError) => {}
                Err(e) => return Err(Error::Other(format!("registry {host}: reading credentials: {e}"))),
            }
        }
    }
    Ok(RegistryAuth::Anonymous)
}

/// Where the credentials for `host` were (or would be) looked up, for error messages.
pub fn hint(host: &str) -> String {
    let configured = keys(host)
        .iter()
        .any(|k| docker_credential::get_credential(k).is_ok() || docker_credential::get_podman_credential(k).is_ok());
    if configured {
        "the credentials in the docker/podman config were rejected".into()
    } else {
        "no credentials configured: docker login / podman login, or $DOCKER_CONFIG/config.json".into()
    }
}
