//! The migrations are embedded at compile time (refinery's macro reads the
//! folder): a new or changed file must rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
