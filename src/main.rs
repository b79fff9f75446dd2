fn main() {
    std::process::exit(imgslim::cli::main());
}
