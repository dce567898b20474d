//! The `vestibule` command; see [`vestibule::cli`].

// mimalloc rather than the system's allocator: the event path allocates and
// frees many small buffers across threads (a request's body, its event, a
// plugin's store, the journal's rows). In paired runs of three plugins and an
// HTTP sink under wrk the host used about 12 % less CPU per request; ingest
// alone did not move beyond the noise. Built without transparent huge pages,
// which cost 50–70 MB of resident memory at idle for no gain that showed
// above the noise.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vestibule::cli::main()
}
