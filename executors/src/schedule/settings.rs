//! The scheduling options every pooled strategy takes: `order=` and `inline_below=`.

use std::fmt;
use std::time::Duration;

/// In what order waiting work gets its turn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Order {
    /// Shortest predicted cost first, with aging: no piece of work is overtaken by more than
    /// [`MAX_OVERTAKES`](crate::schedule::MAX_OVERTAKES) later arrivals. The default.
    #[default]
    Shortest,
    /// First come, first served, whatever the cost.
    Fifo,
}

impl Order {
    pub(crate) fn parse(text: &str) -> Result<Order, String> {
        match text {
            "shortest" => Ok(Order::Shortest),
            "fifo" => Ok(Order::Fifo),
            _ => Err(format!(
                "order `{text}` is not one of: shortest (the default), fifo"
            )),
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Shortest => "shortest",
            Order::Fifo => "fifo",
        })
    }
}

/// Which work runs on the handler's own thread, with no hand-off at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InlineBelow {
    /// Every piece of work goes through the strategy.
    Off,
    /// Work predicted cheaper than the strategy's own hand-off, as measured in this process
    /// (at most [`AUTO_CEILING`](crate::schedule::AUTO_CEILING)).
    Auto,
    /// Work predicted cheaper than this.
    Below(Duration),
}

impl InlineBelow {
    pub(crate) fn parse(text: &str) -> Result<InlineBelow, String> {
        match text {
            "off" => Ok(InlineBelow::Off),
            "auto" => Ok(InlineBelow::Auto),
            duration => crate::units::parse_duration(duration)
                .map(InlineBelow::Below)
                .map_err(|_| {
                    format!(
                        "inline_below `{text}` is not one of: auto, off, or a duration like 20us"
                    )
                }),
        }
    }
}

impl fmt::Display for InlineBelow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InlineBelow::Off => f.write_str("off"),
            InlineBelow::Auto => f.write_str("auto"),
            InlineBelow::Below(d) => crate::units::write_duration(f, *d),
        }
    }
}

/// The scheduling options of one strategy. `None` means the strategy's default, which is
/// `order=shortest` everywhere, `inline_below=auto` for rayon and `inline_below=off` for
/// exclusive and subprocess (whose contracts are a lock and isolation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Scheduling {
    /// `order=`.
    pub order: Option<Order>,
    /// `inline_below=`.
    pub inline_below: Option<InlineBelow>,
}

impl Scheduling {
    /// Every option left to the strategy's default.
    pub fn new() -> Self {
        Scheduling::default()
    }

    /// With `order=`.
    #[must_use]
    pub fn order(mut self, order: Order) -> Self {
        self.order = Some(order);
        self
    }

    /// With `inline_below=`.
    #[must_use]
    pub fn inline_below(mut self, inline_below: InlineBelow) -> Self {
        self.inline_below = Some(inline_below);
        self
    }

    /// Takes `key=value` if it is a scheduling option; `Ok(false)` if the key is not one.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "order" => self.order = Some(Order::parse(value)?),
            "inline_below" => self.inline_below = Some(InlineBelow::parse(value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Writes the options that are set, each as `,key=value`.
    pub(crate) fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(order) = self.order {
            write!(f, ",order={order}")?;
        }
        if let Some(inline_below) = self.inline_below {
            write!(f, ",inline_below={inline_below}")?;
        }
        Ok(())
    }
}

/// The most express threads or workers a pool takes: more would be a pool of their own.
pub const MAX_EXPRESS: usize = 64;

/// How many express threads or workers (`express=N`): a whole number up to [`MAX_EXPRESS`], 0
/// for none.
pub(crate) fn parse_express(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_EXPRESS => Ok(n),
        _ => Err(format!(
            "express `{text}` is not a whole number of express threads or workers from 0 \
             (none) to {MAX_EXPRESS}"
        )),
    }
}
