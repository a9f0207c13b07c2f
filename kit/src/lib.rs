//! Small pieces that the sidecar and the control plane share and that know nothing of
//! either: durations read, and timestamps written, exactly as Dapr's Go code does.

pub mod args;
pub mod duration;
pub mod percent;
pub mod time;
