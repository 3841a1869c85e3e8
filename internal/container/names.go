package container

import (
	"fmt"
	"math/rand/v2"
)

// Generated names follow Docker's adjective_surname pattern so scripts that parse them keep working.
var (
	nameLeft  = []string{"agile", "bold", "brave", "calm", "clever", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid", "modest", "nifty", "quiet", "serene", "sharp", "steady", "swift", "vivid", "wise", "zealous"}
	nameRight = []string{"babbage", "bohr", "curie", "darwin", "dijkstra", "euler", "fermi", "gauss", "hopper", "kepler", "knuth", "lamport", "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak"}
)

func (s *Service) generateName(id string) string {
	for i := 0; ; i++ {
		name := nameLeft[rand.IntN(len(nameLeft))] + "_" + nameRight[rand.IntN(len(nameRight))]
		if i > 5 {
			name = fmt.Sprintf("%s%d", name, rand.IntN(100))
		}
		if s.reserveName(name, id) == nil {
			return name
		}
	}
}
