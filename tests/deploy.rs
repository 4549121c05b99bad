//! The deployment files, read by a test since no cluster or Docker engine runs here: every manifest parses, every
//! probe points at a route that exists on the port it names, grace periods outlast the worker's drain, KEDA
//! scales the deployment that consumes the configured queue, and no file ships a default credential or runs the
//! binaries as root on a writable root file system.

use std::{collections::HashMap, path::Path};

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Every document of every manifest in `deploy/kubernetes`.
fn manifests() -> Vec<Yaml> {
    let dir = root().join("deploy/kubernetes");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // examples/: not applied with the directory
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed =
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        docs.extend(parsed);
    }
    docs
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

#[test]
fn kubernetes_probes_point_at_routes_that_exist() {
    let docs = manifests();
    let openapi: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("api/openapi.json")).unwrap()).unwrap();
    let api_routes: Vec<&str> = openapi["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let deployments = of_kind(&docs, "Deployment");
    assert_eq!(deployments.len(), 2, "an API and a worker deployment");
    for deployment in deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        for container in deployment["spec"]["template"]["spec"]["containers"].as_vec().unwrap() {
            let command = container["command"][0].as_str().unwrap();
            let routes: Vec<&str> = match command {
                "thumbq-api" => api_routes.clone(),
                "thumbq-worker" => thumbq_worker::metrics_listener::ROUTES.to_vec(),
                other => panic!("{name} runs an unknown command {other}"),
            };
            let ports: Vec<&str> =
                container["ports"].as_vec().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
            for probe in ["readinessProbe", "livenessProbe"] {
                let get = &container[probe]["httpGet"];
                let path = get["path"].as_str().unwrap_or_else(|| panic!("{name} has no {probe}"));
                assert!(routes.contains(&path), "{name} {probe} points at {path}, which {command} does not serve");
                let port = get["port"].as_str().unwrap();
                assert!(ports.contains(&port), "{name} {probe} uses port {port}, not declared");
            }
            assert!(!container["resources"]["requests"].is_badvalue(), "{name} declares resource requests");
        }
    }
    assert_eq!(
        of_kind(&docs, "Deployment").iter().find(|d| d["metadata"]["name"].as_str() == Some("thumbq-api")).unwrap()["spec"]
            ["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
            .as_str(),
        Some("/ready"),
        "the API is ready when /ready says so"
    );
}

#[test]
fn grace_periods_outlast_the_drain_and_keda_scales_the_worker_on_its_queue() {
    let docs = manifests();
    let config = &of_kind(&docs, "ConfigMap")[0]["data"];
    let grace: i64 = config["THUMBQ_SHUTDOWN_GRACE_SECS"].as_str().unwrap().parse().unwrap();
    let deployments: HashMap<&str, &Yaml> =
        of_kind(&docs, "Deployment").into_iter().map(|d| (d["metadata"]["name"].as_str().unwrap(), d)).collect();
    let worker_grace =
        deployments["thumbq-worker"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap();
    assert!(worker_grace > grace, "worker termination grace {worker_grace}s must exceed the {grace}s drain");
    let api_grace =
        deployments["thumbq-api"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap();
    assert!(api_grace > 30, "API termination grace {api_grace}s must exceed the 30 s long poll");

    let scaled = &of_kind(&docs, "ScaledObject")[0]["spec"];
    assert!(deployments.contains_key(scaled["scaleTargetRef"]["name"].as_str().unwrap()));
    assert_eq!(scaled["scaleTargetRef"]["name"].as_str(), Some("thumbq-worker"));
    let trigger = &scaled["triggers"][0];
    assert_eq!(trigger["type"].as_str(), Some("rabbitmq"));
    assert_eq!(trigger["metadata"]["queueName"].as_str(), config["THUMBQ_QUEUE"].as_str());
    assert_eq!(of_kind(&docs, "PodDisruptionBudget").len(), 2);
    assert_eq!(of_kind(&docs, "Service").len(), 1);
}

#[test]
fn docker_compose_health_checks_use_the_readiness_route() {
    let text = std::fs::read_to_string(root().join("deploy/docker/docker-compose.yml")).unwrap();
    let compose = &YamlLoader::load_from_str(&text).unwrap()[0];
    let api_check: Vec<&str> =
        compose["services"]["api"]["healthcheck"]["test"].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
    assert!(api_check.iter().any(|arg| arg.ends_with("/ready")), "{api_check:?}");
    for service in ["rabbitmq", "redis", "api", "worker"] {
        assert!(!compose["services"][service].is_badvalue(), "compose defines {service}");
    }
}

/// Every file under `deploy/docker` and `deploy/kubernetes`, with its text.
fn deploy_files() -> Vec<(std::path::PathBuf, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![root().join("deploy/docker"), root().join("deploy/kubernetes")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n != ".env") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path, text));
            }
        }
    }
    files
}

#[test]
fn no_deploy_file_ships_a_default_credential() {
    for (path, text) in deploy_files() {
        assert!(!text.contains("guest"), "{} mentions RabbitMQ's default guest user", path.display());
    }
    let docs = manifests();
    let config = &of_kind(&docs, "ConfigMap")[0]["data"];
    for secret in ["THUMBQ_AMQP_URL", "THUMBQ_REDIS_URL", "THUMBQ_URL_SIGNING_KEY"] {
        assert!(config[secret].is_badvalue(), "{secret} belongs in the Secret, not the ConfigMap");
    }
    let text = std::fs::read_to_string(root().join("deploy/docker/docker-compose.yml")).unwrap();
    let compose = &YamlLoader::load_from_str(&text).unwrap()[0];
    let services = &compose["services"];
    let redis: Vec<&str> = services["redis"]["command"].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
    assert!(redis.windows(2).any(|w| w[0] == "--requirepass" && w[1].starts_with("${")), "{redis:?}");
    assert!(services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"].as_str().unwrap().starts_with("${"));
    for service in ["rabbitmq", "redis"] {
        for port in services[service]["ports"].as_vec().map(Vec::as_slice).unwrap_or_default() {
            let port = port.as_str().unwrap();
            assert!(port.starts_with("127.0.0.1:"), "{service} publishes {port} beyond loopback");
        }
    }
}

#[test]
fn the_binaries_run_as_non_root_on_a_read_only_root_file_system() {
    for deployment in of_kind(&manifests(), "Deployment") {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{name}");
        for container in pod["containers"].as_vec().unwrap() {
            let context = &container["securityContext"];
            assert_eq!(context["readOnlyRootFilesystem"].as_bool(), Some(true), "{name}");
            assert_eq!(context["allowPrivilegeEscalation"].as_bool(), Some(false), "{name}");
            assert_eq!(context["capabilities"]["drop"][0].as_str(), Some("ALL"), "{name}");
            let sources: Vec<&str> =
                container["envFrom"].as_vec().unwrap().iter().filter_map(|s| s["secretRef"]["name"].as_str()).collect();
            assert_eq!(sources, ["thumbq"], "{name} reads its credentials from the Secret");
        }
    }
    let text = std::fs::read_to_string(root().join("deploy/docker/docker-compose.yml")).unwrap();
    let compose = &YamlLoader::load_from_str(&text).unwrap()[0];
    for service in ["api", "worker"] {
        let spec = &compose["services"][service];
        assert_eq!(spec["read_only"].as_bool(), Some(true), "{service}");
        assert_eq!(spec["user"].as_str(), Some("10001"), "{service}");
    }
    let dockerfile = std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).unwrap();
    assert!(dockerfile.lines().any(|l| l.trim() == "USER thumbq"), "the image runs as its own user");
}
