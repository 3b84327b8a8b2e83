//! The `test_sdk_greet` command: arguments parsed by clap through the SDK (a `clap::Parser`
//! implemented by hand, as no derive is in the tree), and the configuration read as a route
//! reads it. Run by `tests/tests/sdk_commands.rs`.

use inphms_sdk::clap::{self, Arg, ArgMatches, Command, CommandFactory, FromArgMatches, Parser};
use inphms_sdk::{command, Host};

/// `--name NAME [--times N] [--shout]`.
struct GreetArgs {
    name: String,
    times: u32,
    shout: bool,
}

impl CommandFactory for GreetArgs {
    fn command() -> Command {
        Command::new("test_sdk_greet")
            .arg(
                Arg::new("name")
                    .long("name")
                    .required(true)
                    .help("Who to greet"),
            )
            .arg(
                Arg::new("times")
                    .long("times")
                    .default_value("1")
                    .value_parser(clap::value_parser!(u32).range(1..=5))
                    .help("How many greetings"),
            )
            .arg(
                Arg::new("shout")
                    .long("shout")
                    .action(clap::ArgAction::SetTrue)
                    .help("Greet in capitals"),
            )
    }
    fn command_for_update() -> Command {
        Self::command()
    }
}

impl FromArgMatches for GreetArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(GreetArgs {
            name: m.get_one::<String>("name").cloned().unwrap_or_default(),
            times: m.get_one::<u32>("times").copied().unwrap_or(1),
            shout: m.get_flag("shout"),
        })
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Parser for GreetArgs {}

/// Greets someone with the configured greeting.
#[command(name = "test_sdk_greet")]
fn greet(args: GreetArgs) -> i32 {
    let greeting: String = Host
        .config("test_sdk", "greeting")
        .unwrap_or_else(|| "hello".into());
    let suffix: Option<String> = Host.config("options", "test_sdk_suffix");
    for _ in 0..args.times {
        let line = format!(
            "{greeting} {}{}",
            args.name,
            suffix.as_deref().unwrap_or("")
        );
        println!(
            "{}",
            if args.shout {
                line.to_uppercase()
            } else {
                line
            }
        );
    }
    0
}
