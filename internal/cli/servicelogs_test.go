package cli

import "testing"

func TestTaskPrefixerRewrite(t *testing.T) {
	details := "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1,extra=a%2Cb"
	key := "n1/s1/t1"
	cases := []struct {
		name string
		o    serviceLogsOptions
		in   string
		want string
	}{
		{"plain", serviceLogsOptions{}, details + " hello\n", "web.1.t1@node1    | hello\n"},
		{"timestamps", serviceLogsOptions{timestamps: true}, "2026-12-06T11:00:00.000000000Z " + details + " hello\n",
			"2026-12-06T11:00:00.000000000Z web.1.t1@node1    | hello\n"},
		{"details", serviceLogsOptions{details: true}, details + " hello\n", "web.1.t1@node1    | extra=a%2Cb hello\n"},
	}
	for _, tc := range cases {
		p := &taskPrefixer{o: tc.o, names: map[string]string{key: "web.1.t1@node1"}}
		got, err := p.rewrite([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
	p := &taskPrefixer{names: map[string]string{}}
	for _, bad := range []string{"no-details-here", "a=b,c hello", "com.docker.swarm.node.id=n1 hello"} {
		if _, err := p.rewrite([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
