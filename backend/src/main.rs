fn main() -> std::process::ExitCode {
    fundtrail::cli::main()
}
