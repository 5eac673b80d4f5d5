//! `docker-compose.yml` cannot be run on the build machines (no Docker engine), so check
//! what can be checked: it parses, every service uses the one image built by the
//! Dockerfile, every command is valid for the `tokbind-demo` command line, and the URLs
//! the services give each other agree.

use clap::Parser as _;
use tokbind_demo::cli::Role;
use yaml_rust2::{Yaml, YamlLoader};

const COMPOSE: &str = include_str!("../../../docker-compose.yml");
const DOCKERFILE: &str = include_str!("../../../Dockerfile");

/// A service's mapping with YAML merge keys (`<<: *anchor`) applied.
fn service(doc: &Yaml, name: &str) -> yaml_rust2::yaml::Hash {
    let raw = doc["services"][name]
        .as_hash()
        .unwrap_or_else(|| panic!("service {name}"))
        .clone();
    let mut merged = raw
        .get(&Yaml::from_str("<<"))
        .and_then(Yaml::as_hash)
        .cloned()
        .unwrap_or_default();
    for (k, v) in raw {
        if k.as_str() != Some("<<") {
            merged.insert(k, v);
        }
    }
    merged
}

fn get<'a>(h: &'a yaml_rust2::yaml::Hash, key: &str) -> &'a Yaml {
    h.get(&Yaml::from_str(key)).unwrap_or(&Yaml::BadValue)
}

fn command(h: &yaml_rust2::yaml::Hash) -> Role {
    let args: Vec<String> = get(h, "command")
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    Role::try_parse_from(std::iter::once("tokbind-demo".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn compose_file_matches_the_image_and_the_command_line() {
    let docs = YamlLoader::load_from_str(COMPOSE).expect("valid YAML");
    let doc = &docs[0];
    let names: Vec<&str> = doc["services"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(names, ["idp", "rp", "client"]);
    for name in &names {
        let s = service(doc, name);
        assert_eq!(
            get(&s, "image").as_str(),
            Some("tokbind-demo:latest"),
            "{name}"
        );
        assert_eq!(get(&s, "build").as_str(), Some("."), "{name}");
    }
    let (
        Role::Idp {
            listen: idp_listen,
            public_url: idp_url,
            rp_url: idp_rp,
            ..
        },
        Role::Rp {
            listen: rp_listen,
            public_url: rp_url,
            idp_url: rp_idp,
            insecure,
            ..
        },
        Role::Client {
            rp_url: client_rp,
            idp_url: client_idp,
            ..
        },
    ) = (
        command(&service(doc, "idp")),
        command(&service(doc, "rp")),
        command(&service(doc, "client")),
    )
    else {
        panic!("services run the wrong roles");
    };
    assert_eq!(idp_rp, rp_url);
    assert_eq!(rp_idp, idp_url);
    assert_eq!(client_rp, rp_url);
    assert_eq!(client_idp, idp_url);
    assert!(insecure, "each server's certificate is self-signed");
    assert!(idp_url.ends_with(&format!(":{}", idp_listen.port())));
    assert!(rp_url.ends_with(&format!(":{}", rp_listen.port())));
    assert_eq!(
        get(&service(doc, "client"), "depends_on")
            .as_vec()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn dockerfile_builds_the_binary_the_services_run() {
    assert!(
        DOCKERFILE.contains("cargo build --release --locked -p tokbind-demo --bin tokbind-demo")
    );
    assert!(DOCKERFILE.contains("ENTRYPOINT [\"tokbind-demo\"]"));
    let stages = DOCKERFILE
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert_eq!(stages, 2, "multi-stage: build, then a slim runtime");
}
