// Package userns gives berthd's --userns-remap: the subordinate id ranges a container's users are
// mapped into on the host, and the idmapped mounts that let such a container see its image's files as
// the image's own uids while nothing on disk changes owner.
package userns

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultUser is the account --userns-remap=default uses, made (with its subordinate ranges) when the
// host has none; Docker's name for it is dockremap.
const DefaultUser = "berthremap"

// defaultRange is the size of the range given to DefaultUser: a whole 16-bit id space, as Docker does.
const defaultRange = 65536

// Remap says how container ids map to host ids. Container id 0 is UIDs[0].HostID on the host.
type Remap struct {
	// Spec is the flag's value as given ("default", "user", "user:group", "uid:gid").
	Spec       string
	User       string
	UIDs, GIDs []specs.LinuxIDMapping
	// IDMapped says containers see their files through idmapped mounts; when false (set by Check) they
	// use chowned copies instead.
	IDMapped bool

	holder *nsHolder
}

// Files of the subordinate id ranges; variables so that tests can point them elsewhere.
var (
	subuidFile = "/etc/subuid"
	subgidFile = "/etc/subgid"
)

// Parse reads a --userns-remap value and looks up its ranges in /etc/subuid and /etc/subgid. "default"
// creates DefaultUser and its ranges when missing, as Docker does for dockremap.
func Parse(value string) (*Remap, error) {
	if value == "" {
		return nil, nil
	}
	userPart, groupPart, _ := strings.Cut(value, ":")
	if userPart == "" {
		return nil, fmt.Errorf("invalid --userns-remap %q: expected default, user, user:group or uid:gid", value)
	}
	if value == "default" {
		if err := ensureDefaultUser(); err != nil {
			return nil, err
		}
		userPart = DefaultUser
	}
	u, err := lookupUser(userPart)
	if err != nil {
		return nil, err
	}
	g := &user.Group{Gid: u.Gid, Name: u.Username}
	if gg, err := user.LookupGroupId(u.Gid); err == nil {
		g = gg
	}
	if groupPart != "" {
		if g, err = lookupGroup(groupPart); err != nil {
			return nil, err
		}
	}
	uids, err := readRanges(subuidFile, u.Username, u.Uid)
	if err != nil {
		return nil, err
	}
	gids, err := readRanges(subgidFile, g.Name, g.Gid)
	if err != nil {
		return nil, err
	}
	if len(uids) == 0 {
		return nil, fmt.Errorf("no subordinate uid range for user %s in %s", u.Username, subuidFile)
	}
	if len(gids) == 0 {
		return nil, fmt.Errorf("no subordinate gid range for group %s in %s", g.Name, subgidFile)
	}
	return &Remap{Spec: value, User: u.Username, UIDs: uids, GIDs: gids}, nil
}

// RootUID and RootGID are the host ids of the container's root.
func (r *Remap) RootUID() int { return int(r.UIDs[0].HostID) }

// RootGID is the host gid of the container's root group.
func (r *Remap) RootGID() int { return int(r.GIDs[0].HostID) }

// HostUID maps a container uid to the host's, and says whether it is mapped at all.
func (r *Remap) HostUID(id int) (int, bool) { return toHost(r.UIDs, id) }

// HostGID maps a container gid to the host's.
func (r *Remap) HostGID(id int) (int, bool) { return toHost(r.GIDs, id) }

func toHost(m []specs.LinuxIDMapping, id int) (int, bool) {
	for _, e := range m {
		if id >= int(e.ContainerID) && id < int(e.ContainerID+e.Size) {
			return int(e.HostID) + id - int(e.ContainerID), true
		}
	}
	return -1, false
}

func lookupUser(s string) (*user.User, error) {
	if _, err := strconv.Atoi(s); err == nil {
		if u, err := user.LookupId(s); err == nil {
			return u, nil
		}
		// A bare uid without an account: ranges may be listed by number.
		return &user.User{Uid: s, Gid: s, Username: s}, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return nil, fmt.Errorf("--userns-remap: no such user %q", s)
	}
	return u, nil
}

func lookupGroup(s string) (*user.Group, error) {
	if _, err := strconv.Atoi(s); err == nil {
		if g, err := user.LookupGroupId(s); err == nil {
			return g, nil
		}
		return &user.Group{Gid: s, Name: s}, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return nil, fmt.Errorf("--userns-remap: no such group %q", s)
	}
	return g, nil
}

// readRanges reads the ranges of name (or of its number) from a subid file, in file order, mapped to
// consecutive container ids from 0.
func readRanges(file, name, id string) ([]specs.LinuxIDMapping, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []specs.LinuxIDMapping
	next := uint32(0)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ":")
		if len(parts) != 3 || (parts[0] != name && parts[0] != id) {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			return nil, fmt.Errorf("%s: malformed line %q", file, line)
		}
		if start == 0 {
			return nil, fmt.Errorf("%s: the range of %s starts at 0, which would make the container's root the host's", file, name)
		}
		out = append(out, specs.LinuxIDMapping{ContainerID: next, HostID: uint32(start), Size: uint32(count)})
		next += uint32(count)
	}
	return out, sc.Err()
}

// ensureDefaultUser creates DefaultUser and gives it a subordinate uid and gid range after every range
// already handed out, when it has none.
func ensureDefaultUser() error {
	if _, err := user.Lookup(DefaultUser); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--shell", "/bin/false", DefaultUser).CombinedOutput()
		if err != nil {
			return fmt.Errorf("--userns-remap=default: creating user %s: %v: %s", DefaultUser, err, strings.TrimSpace(string(out)))
		}
	}
	for _, file := range []string{subuidFile, subgidFile} {
		r, err := readRanges(file, DefaultUser, "")
		if err != nil {
			return err
		}
		if len(r) > 0 {
			continue
		}
		start, err := freeRangeStart(file)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(f, "%s:%d:%d\n", DefaultUser, start, defaultRange)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("--userns-remap=default: adding a range to %s: %w", file, err)
		}
	}
	return nil
}

// freeRangeStart is the first id from 100000 past every range in file.
func freeRangeStart(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	ends := []uint64{100000}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.Split(strings.TrimSpace(line), ":")
		if len(parts) != 3 {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 == nil && err2 == nil {
			ends = append(ends, start+count)
		}
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i] > ends[j] })
	return ends[0], nil
}

// SysMap converts the spec's mappings to what os/exec writes into a child's uid_map or gid_map.
func SysMap(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, e := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)}
	}
	return out
}
