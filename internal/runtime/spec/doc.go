// Package spec builds the OCI runtime-spec (config.json) for a container from the engine's view of it:
// argv, env, user, resources, mounts. The result follows Docker's defaults (capabilities, masked and
// read-only paths, mounts, devices) so that containers behave the same under Berth's runtime and under
// runc, and the bundle it writes is a plain OCI bundle any OCI runtime can run.
package spec
