//! asyncio's combinators over tasks and futures: `sleep`, `gather`, `wait`, `wait_for`,
//! `shield`, and the `Spawn`/`IntoTask` glue that lets them start children on the running loop
//! or runtime. Each returns a `Send` future when its inputs are `Send` (see the crate docs).

pub(crate) mod child;
pub(crate) mod gather;
pub(crate) mod shield;
pub(crate) mod sleep;
pub(crate) mod wait;
pub(crate) mod wait_for;
