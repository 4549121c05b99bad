//! The deployment files, checked here since no cluster or Docker engine runs: the Kubernetes set is rendered by
//! kubectl's own kustomize (with and without the KEDA overlay) and validated against Kubernetes' and KEDA's schemas,
//! the compose file against the Compose specification's; then every probe points at a route that exists on the port
//! it names, grace periods outlast the worker's drain, memory limits cover the budgets, KEDA scales the deployment
//! that consumes the configured queue, and no file ships a default credential or runs the binaries as root on a
//! writable root file system. The validators are installed by `deploy/native/test-tools.sh` (`make test` runs it).

use std::{collections::HashMap, process::Command};

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::tools::{piped, root, succeeds, text, tool};

/// What `kubectl apply -k deploy/<dir>` would apply: kubectl's kustomize output.
fn kustomize(dir: &str) -> String {
    let output = succeeds(Command::new(tool("deploy-lint/bin/kubectl")).arg("kustomize").arg(root().join(dir)));
    String::from_utf8(output.stdout).unwrap()
}

fn documents(text: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("kustomize's output does not parse: {e}"))
}

/// Every resource of the KEDA overlay: the base and the ScaledObject.
fn manifests() -> Vec<Yaml> {
    documents(&kustomize("deploy/kubernetes/keda"))
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

#[test]
fn the_kubernetes_set_applies_without_keda_and_validates_against_the_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let base = kustomize("deploy/kubernetes");
    let kinds: Vec<String> = documents(&base)
        .iter()
        .map(|d| format!("{}/{}", d["apiVersion"].as_str().unwrap(), d["kind"].as_str().unwrap()))
        .collect();
    assert!(kinds.iter().all(|k| !k.starts_with("keda.sh/")), "the base needs no KEDA: {kinds:?}");
    assert!(kinds.iter().any(|k| k == "apps/v1/Deployment"), "{kinds:?}");
    let rendered = dir.path().join("base.yaml");
    std::fs::write(&rendered, &base).unwrap();
    let examples = std::fs::read_dir(root().join("deploy/kubernetes/examples")).unwrap().map(|e| e.unwrap().path());
    let mut validate = Command::new(tool("deploy-lint/bin/kubernetes-validate"));
    succeeds(validate.args(["--strict", "--quiet"]).arg(&rendered).args(examples));

    // The overlay adds KEDA's resources, which kubernetes-validate does not know: KEDA's own schemas check them.
    let overlay = kustomize("deploy/kubernetes/keda");
    let keda_check = || {
        let mut node = Command::new("node");
        node.arg(root().join("tests/support/crd-validate.mjs")).arg(tool("crd-models"));
        node
    };
    let checked = piped(&mut keda_check(), &overlay);
    let report = text(&checked);
    assert!(checked.status.success(), "{report}");
    assert!(report.contains("ok ScaledObject/thumbq-worker"), "{report}");
    assert!(report.contains("ok TriggerAuthentication/thumbq-amqp"), "{report}");
    // And they would catch a broken one.
    let broken = piped(&mut keda_check(), &overlay.replace("minReplicaCount: 1", "minReplicaCount: one"));
    assert!(!broken.status.success(), "{}", text(&broken));
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let mut check = Command::new(tool("deploy-lint/bin/check-jsonschema"));
    succeeds(
        check.args(["--builtin-schema", "vendor.compose-spec"]).arg(root().join("deploy/docker/docker-compose.yml")),
    );
    let text = std::fs::read_to_string(root().join("deploy/docker/docker-compose.yml")).unwrap();
    let compose = &YamlLoader::load_from_str(&text).unwrap()[0];
    for service in ["rabbitmq", "redis", "api", "worker"] {
        assert_eq!(compose["services"][service]["restart"].as_str(), Some("unless-stopped"), "{service}");
    }
    let redis: Vec<&str> =
        compose["services"]["redis"]["command"].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
    assert!(redis.windows(2).any(|w| w == ["--appendonly", "yes"]), "Redis keeps its data: {redis:?}");
    assert!(compose["services"]["redis"]["volumes"][0].as_str().unwrap().ends_with(":/data"));
}

#[test]
fn the_image_listens_on_every_interface_and_caches_its_dependencies() {
    let dockerfile = std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).unwrap();
    assert!(dockerfile.contains("THUMBQ_BIND=0.0.0.0:8000"), "a published port must reach the API");
    let cook = dockerfile.find("cargo chef cook").expect("dependencies are built in a layer of their own");
    let sources = dockerfile[cook..].find("COPY . .").expect("the sources come after");
    assert!(dockerfile[cook + sources..].contains("cargo build --release"));
}

/// Mebibytes of a Kubernetes quantity such as `576Mi` or `1Gi`.
fn mebibytes(quantity: &str) -> i64 {
    let (number, unit) = quantity.split_at(quantity.find(|c: char| !c.is_ascii_digit()).unwrap_or(quantity.len()));
    let number: i64 = number.parse().unwrap();
    match unit {
        "Mi" => number,
        "Gi" => number * 1024,
        other => panic!("unexpected unit {other} in {quantity}"),
    }
}

#[test]
fn memory_limits_cover_each_process_budget() {
    let docs = manifests();
    for (name, budget) in [("thumbq-api", "THUMBQ_UPLOAD_MEMORY_MB"), ("thumbq-worker", "THUMBQ_WORKER_MEMORY_MB")] {
        let deployment =
            of_kind(&docs, "Deployment").into_iter().find(|d| d["metadata"]["name"].as_str() == Some(name));
        let container = &deployment.unwrap()["spec"]["template"]["spec"]["containers"][0];
        let env = container["env"].as_vec().unwrap();
        let value =
            env.iter().find(|e| e["name"].as_str() == Some(budget)).unwrap_or_else(|| panic!("{name} sets {budget}"));
        let budget: i64 = value["value"].as_str().unwrap().parse().unwrap();
        let limit = mebibytes(container["resources"]["limits"]["memory"].as_str().unwrap());
        assert!(limit >= budget + 64, "{name}: limit {limit} Mi < budget {budget} Mi + 64 Mi for the process");
        assert_eq!(container["imagePullPolicy"].as_str(), Some("IfNotPresent"), "{name}");
    }
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
