fn main() {
    // Die quietly on a closed pipe (`imgslim slim … | head`), like other Unix tools, instead of
    // panicking in println!.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(imgslim::cli::main());
}
