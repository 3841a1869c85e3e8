package plumbing

import "testing"

func TestContainsMountPoint(t *testing.T) {
	mi := "36 35 98:0 /mnt1 /run/berth/netns rw,noatime master:1 - ext3 /dev/root rw\n"
	if !containsMountPoint(mi, "/run/berth/netns") || containsMountPoint(mi, "/run/berth") {
		t.Fatal("mountinfo parsing")
	}
}
