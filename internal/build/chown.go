package build

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// resolveChown turns --chown's "user[:group]" into IDs, names looked up in the image's /etc/passwd and
// /etc/group. Without a group, the user's primary group is used for a name and the UID for a number.
func resolveChown(root *os.Root, chown string) (int, int, error) {
	if chown == "" {
		return 0, 0, nil
	}
	user, group, hasGroup := strings.Cut(chown, ":")
	uid, primary, err := lookupID(root, "etc/passwd", user)
	if err != nil {
		return 0, 0, errdefs.InvalidParameter(fmt.Errorf("unable to convert uid/gid chown string to host mapping: can't find uid for user %s: %w", user, err))
	}
	gid := primary
	if hasGroup {
		if gid, _, err = lookupID(root, "etc/group", group); err != nil {
			return 0, 0, errdefs.InvalidParameter(fmt.Errorf("unable to convert uid/gid chown string to host mapping: can't find gid for group %s: %w", group, err))
		}
	}
	return uid, gid, nil
}

// lookupID finds name in a passwd- or group-style file: its ID (third field) and, for passwd, the
// primary group (fourth). A number is its own ID.
func lookupID(root *os.Root, file, name string) (int, int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, n, nil
	}
	if root == nil {
		return 0, 0, fmt.Errorf("no such user or group: %s", name)
	}
	f, err := root.Open(file)
	if err != nil {
		return 0, 0, fmt.Errorf("no such user or group: %s", name)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 || fields[0] != name {
			continue
		}
		id, err := strconv.Atoi(fields[2])
		if err != nil {
			continue
		}
		second := id
		if len(fields) > 3 {
			if g, err := strconv.Atoi(fields[3]); err == nil {
				second = g
			}
		}
		return id, second, nil
	}
	return 0, 0, fmt.Errorf("no such user or group: %s", name)
}
