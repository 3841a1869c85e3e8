package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/errdefs"
)

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// ResolveUser turns Docker's -u syntax ("", "name", "uid", "name:group", "uid:gid") and --group-add into
// ids, reading the rootfs's own /etc/passwd and /etc/group. Numeric ids need not exist. Supplementary
// groups from /etc/group membership are added only when no group is given explicitly, as Docker does.
// Errors are errdefs.InvalidParameter.
func ResolveUser(rootfs, user string, groupAdd []string) (uid, gid uint32, additional []uint32, home string, err error) {
	users, err := readPasswd(rootfs)
	if err != nil {
		return 0, 0, nil, "", errdefs.System(err)
	}
	groups, err := readGroup(rootfs)
	if err != nil {
		return 0, 0, nil, "", errdefs.System(err)
	}
	userArg, groupArg, hasGroup := strings.Cut(user, ":")
	if userArg == "" {
		userArg = "0"
	}
	home = "/"
	var name string
	if n, perr := parseID(userArg); perr == nil {
		uid = n
		for _, u := range users {
			if u.uid == n {
				gid, home, name = u.gid, u.home, u.name
				break
			}
		}
	} else {
		found := false
		for _, u := range users {
			if u.name == userArg {
				uid, gid, home, name, found = u.uid, u.gid, u.home, u.name, true
				break
			}
		}
		if !found {
			return 0, 0, nil, "", errdefs.InvalidParameter(fmt.Errorf("unable to find user %s: no matching entries in passwd file", userArg))
		}
	}
	if hasGroup && groupArg != "" {
		if gid, err = lookupGroup(groups, groupArg); err != nil {
			return 0, 0, nil, "", err
		}
	} else if name != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == name && g.gid != gid {
					additional = appendUnique(additional, g.gid)
				}
			}
		}
	}
	// The primary group leads the supplementary list, as after a login's initgroups(): tools that print
	// getgroups() (busybox id) then show it, as they do under Docker.
	additional = append([]uint32{gid}, additional...)
	for _, ga := range groupAdd {
		g, err := lookupGroup(groups, ga)
		if err != nil {
			return 0, 0, nil, "", err
		}
		additional = appendUnique(additional, g)
	}
	return uid, gid, additional, home, nil
}

func lookupGroup(groups []groupEntry, arg string) (uint32, error) {
	if n, err := parseID(arg); err == nil {
		return n, nil
	}
	for _, g := range groups {
		if g.name == arg {
			return g.gid, nil
		}
	}
	return 0, errdefs.InvalidParameter(fmt.Errorf("unable to find group %s: no matching entries in group file", arg))
}

func appendUnique(ids []uint32, id uint32) []uint32 {
	for _, v := range ids {
		if v == id {
			return ids
		}
	}
	return append(ids, id)
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// openInRoot opens name inside rootfs without letting a symlink lead out of it. A missing file is not an
// error: a rootfs without /etc/passwd simply has no names.
func openInRoot(rootfs, name string) (*os.File, error) {
	p, err := JoinInRoot(rootfs, name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return f, err
}

// scanColon calls fn with the colon-separated fields of every non-comment line.
func scanColon(r io.Reader, fn func(fields []string)) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	return sc.Err()
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	f, err := openInRoot(rootfs, "/etc/passwd")
	if err != nil || f == nil {
		return nil, err
	}
	defer f.Close()
	var out []passwdEntry
	err = scanColon(f, func(fs []string) {
		if len(fs) < 4 {
			return
		}
		uid, err1 := parseID(fs[2])
		gid, err2 := parseID(fs[3])
		if err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: fs[0], uid: uid, gid: gid, home: "/"}
		if len(fs) > 5 && fs[5] != "" {
			e.home = fs[5]
		}
		out = append(out, e)
	})
	return out, err
}

func readGroup(rootfs string) ([]groupEntry, error) {
	f, err := openInRoot(rootfs, "/etc/group")
	if err != nil || f == nil {
		return nil, err
	}
	defer f.Close()
	var out []groupEntry
	err = scanColon(f, func(fs []string) {
		if len(fs) < 3 {
			return
		}
		gid, err := parseID(fs[2])
		if err != nil {
			return
		}
		e := groupEntry{name: fs[0], gid: gid}
		if len(fs) > 3 && fs[3] != "" {
			e.members = strings.Split(fs[3], ",")
		}
		out = append(out, e)
	})
	return out, err
}
