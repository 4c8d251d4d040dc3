//! All integration tests, linked into one binary (as ripgrep does).
#![allow(clippy::disallowed_methods)] // tests build fixture trees with plain writes

mod util;

mod api;
mod completions;
mod conformance;
mod health_netns;
mod install;
mod lab;
mod layers;
mod pak;
mod profiles;
mod red_down;
mod reliability;
mod supervisor;
mod wui;
