// The migrations are embedded at compile time (`include_str!` in `db.rs`): rebuild when
// one changes or is added.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
