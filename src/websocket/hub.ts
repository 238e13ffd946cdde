/** Placeholder until the websocket module lands: deny-lists and socket registry. */
export class WebsocketHub {
  denyJtis(_jtis: string[]): void {}
  deauthorizeUser(_server: string, _user: string): void {}
  closeServer(_server: string): void {}
}
