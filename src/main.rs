use clap::Parser;

/// A scan builds and drops millions of small JSON values (every listed object's tree):
/// mimalloc allocates and frees them in about half the instructions of the system
/// allocator, and its memory does not grow from one scan to the next. Built without
/// transparent huge pages (`no_thp`): faulting in and clearing 2 MiB pages for memory that
/// is soon given back cost more system time than the allocator saved.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = plumbline::cli::Cli::parse();
    std::process::exit(plumbline::cli::run(cli));
}
