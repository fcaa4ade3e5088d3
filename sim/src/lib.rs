//! Deterministic simulator for Ensemble (skeleton; owned by the simulator engineer).
