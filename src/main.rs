//! The `rudder-clevertap` binary: wiring only.

fn main() {
    eprintln!("rudder-clevertap: not wired yet");
    std::process::exit(2);
}
