import VoteService
import Shared

// Reads configuration from the environment (names in the README) and runs until SIGTERM.
await ServiceMain.run(VoteConfiguration.self, buildApplication(configuration:logger:))
