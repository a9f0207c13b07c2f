//! Small pieces that the sidecar and the control plane share and that know nothing of
//! either: today, durations read exactly as Dapr's Go code reads them.

pub mod duration;
