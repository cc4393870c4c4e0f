//! The data model: suites of checks, the probes that name facts, expectations over facts, and
//! profiles. Everything here is parsed and validated at load time; nothing here touches a host.

mod expect;
mod ids;
mod probe;
mod profile;
mod suite;
mod version;

pub use expect::{fixed_versions, Expectation, FactRef, Operand, Predicate};
pub use ids::{CheckId, Name};
pub use probe::{ImageMetadata, Probe, ProbeClass, RUNTIMES};
pub use profile::{CertifiedKind, Profile, Selector, Waiver};
pub use suite::{Applicability, Check, Scalar, Suite, TargetKind};
pub use version::{compare_dotted, fixed_in, KernelVersion, ReleaseVersion};

pub use hostcert_reports::Severity;
