//! A small PPPoE access concentrator and client for tests and the lab.
//!
//! ```text
//! lab-pppoe ac IFACE [--ac-name NAME] [--service NAME]   answer PADI/PADR until killed
//! lab-pppoe client IFACE [--timeout-ms N]                discovery + session; prints the
//!                                                        session id (exit 0), 1 if no AC
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use connectd::uplink::pretest::pppoe::{AccessConcentrator, open_session};

fn usage() -> ExitCode {
    eprintln!(
        "usage: lab-pppoe ac IFACE [--ac-name NAME] [--service NAME]\n       lab-pppoe client IFACE [--timeout-ms N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(iface)) = (args.first(), args.get(1)) else {
        return usage();
    };
    let mut ac_name = "lab-ac".to_string();
    let mut service: Option<String> = None;
    let mut timeout_ms: u64 = 3000;
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let Some(value) = rest.next() else {
            return usage();
        };
        match flag.as_str() {
            "--ac-name" => ac_name = value.clone(),
            "--service" => service = Some(value.clone()),
            "--timeout-ms" => match value.parse() {
                Ok(v) => timeout_ms = v,
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    match mode.as_str() {
        "ac" => {
            let mut ac = match AccessConcentrator::open(iface, &ac_name, service.as_deref()) {
                Ok(ac) => ac,
                Err(e) => {
                    eprintln!("lab-pppoe: {iface}: {e}");
                    return ExitCode::from(1);
                }
            };
            println!("lab-pppoe: AC {ac_name:?} listening on {iface}");
            let _ = std::io::stdout().flush();
            ac.serve(|line| {
                println!("lab-pppoe: {line}");
                let _ = std::io::stdout().flush();
            })
        }
        "client" => match open_session(iface, Duration::from_millis(timeout_ms)) {
            Ok(session) => {
                println!("{session}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lab-pppoe: {e}");
                ExitCode::from(1)
            }
        },
        _ => usage(),
    }
}
