//! The data model: suites of checks, the probes that name facts, expectations over facts, and
//! profiles. Everything here is parsed and validated at load time; nothing here touches a host.

mod expect;
mod ids;
mod probe;
mod profile;
mod suite;
mod version;

pub use expect::{Expectation, FactRef, Operand, Predicate};
pub use ids::{CheckId, Name};
pub use probe::Probe;
pub use profile::{CertifiedKind, Profile, Selector, Waiver};
pub use suite::{Applicability, Check, Scalar, Suite, TargetKind};
pub use version::{compare_dotted, KernelVersion};

pub use hostcert_reports::Severity;
