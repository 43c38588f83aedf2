//! The `viva` binary.

mod accounts;
mod admission;
mod api;
mod api_keys;
mod attempts;
mod bench;
mod capacity;
mod cli;
mod conclusion;
mod config;
mod engines;
mod error;
mod health;
mod interview_call;
mod jobs;
mod join;
mod leases;
mod links;
mod live;
mod media_stream;
mod metrics;
mod models;
mod page_headers;
mod peer;
mod phone;
mod pins;
mod say;
mod scheduling;
mod secrets;
mod serve;
mod simulate;
mod state;
mod storage;
mod transcribe;
mod webhooks;
mod workspace;

use std::process::ExitCode;

use clap::Parser;

use cli::{BenchCommand, Cli, Command, ModelsCommand, UserCommand};
use config::{Config, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line a user can act on; the chain of causes is joined with ": ".
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?;
    let (mut config, mut provenance) = Config::load(cli.config.as_deref(), std::env::vars(), &cwd)?;
    if let Some(dir) = &cli.data_dir {
        config.set_data_dir(dir, &cwd, &mut provenance);
    }
    if let Command::Serve(args) = &cli.command {
        if let Some(http) = args.http {
            config.server.http = http;
        }
        if let Some(sip) = args.sip {
            config.sip.udp = Some(sip);
            config.sip.tcp = Some(sip);
        }
    }
    init_logging(&config, &cli)?;

    match &cli.command {
        Command::Serve(_) => {
            tokio::runtime::Runtime::new()?.block_on(serve::run(config, provenance))
        }
        Command::Transcribe(args) => transcribe::run(config, args),
        Command::Say(args) => say::run(config, args),
        Command::Simulate(args) => simulate::run(&config, args),
        Command::Bench(BenchCommand::Speech(args)) => bench::speech(&config, args),
        Command::Bench(BenchCommand::Vocabulary(args)) => bench::vocabulary::run(&config, args),
        Command::Bench(BenchCommand::Soak(args)) => {
            bench::load::soak(&config, cli.config.as_deref(), args)
        }
        Command::Bench(BenchCommand::Load(args)) => {
            bench::load::run(&config, cli.config.as_deref(), args)
        }
        Command::Models(ModelsCommand::Convert { from, out }) => models::convert(from, out),
        Command::Models(ModelsCommand::Check) => models::check(&config),
        Command::Health(args) => health::run(&config, args),
        Command::ApiKey => {
            tokio::runtime::Runtime::new()?.block_on(secrets::print_api_key(&config))
        }
        Command::CpaasUrl => {
            tokio::runtime::Runtime::new()?.block_on(secrets::print_cpaas_url(&config))
        }
        Command::Config => {
            print!("{}", config.to_masked_toml(&provenance));
            Ok(())
        }
        Command::User(UserCommand::Add(args)) => {
            tokio::runtime::Runtime::new()?.block_on(accounts::add(&config, args))
        }
        Command::User(UserCommand::List) => {
            tokio::runtime::Runtime::new()?.block_on(accounts::list(&config))
        }
    }
}

/// Logs go to stderr. The server logs at `log.level`; one-shot commands only warn unless
/// asked, so their output stays readable. whisper.cpp's chatter is kept at warn, and
/// symphonia's probe messages are dropped: a bad file is reported by viva's own error.
/// rsipstack logs every SIP message whole at info, callers' numbers included, so it is kept
/// at warn: viva logs each call's progress itself.
fn init_logging(config: &Config, cli: &Cli) -> anyhow::Result<()> {
    let level = match (&cli.log_level, &cli.command) {
        (Some(level), _) => level.clone(),
        (None, Command::Serve(_)) => config.log.level.clone(),
        (None, _) => "warn".to_owned(),
    };
    let mut directives = level;
    for (target, quiet) in [
        ("whisper_rs", "whisper_rs=warn"),
        ("symphonia", "symphonia=off"),
        ("rsipstack", "rsipstack=warn"),
    ] {
        if !directives.contains(target) {
            directives = format!("{directives},{quiet}");
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .map_err(|e| anyhow::anyhow!("--log-level {directives}: {e}"))?;
    // Colour codes only for a person at a terminal, never in a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
