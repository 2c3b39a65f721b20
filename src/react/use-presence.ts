// Who is on a channel with presence, kept up to date: the members when subscribed, then
// each join and leave applied.
import { useEffect, useState } from "react";
import type { Member } from "../client/client-types.ts";
import { useSocketAPIContext } from "./context.ts";

/** What `usePresence` returns. */
export interface PresenceState<TInfo> {
  /** The members, in the order they came. */
  readonly members: readonly Member<TInfo>[];
  /** How many there are (the server's count: more than `members` past 1,000). */
  readonly count: number;
}

const NOBODY: PresenceState<unknown> = { members: [], count: 0 };

/** The untyped hook; `createSocketAPIHooks` gives it its types. */
export function usePresence(
  name: string,
  params?: Record<string, unknown>,
): PresenceState<unknown> {
  const { channels } = useSocketAPIContext();
  const [state, setState] = useState<PresenceState<unknown>>(NOBODY);
  const paramsKey = JSON.stringify(params ?? null);
  useEffect(() => {
    if (!channels) return;
    let live = true;
    let members = new Map<string, Member>();
    let extra = 0;
    const publish = () => {
      if (live) setState({ members: [...members.values()], count: members.size + extra });
    };
    const { stop } = channels.listen(
      name,
      paramsKey === "null" ? undefined : JSON.parse(paramsKey),
      {
        members: (list, count) => {
          members = new Map(list.map((member) => [member.user, member]));
          extra = Math.max(0, count - list.length);
          publish();
        },
        join: (member) => {
          members.set(member.user, member);
          publish();
        },
        leave: ({ user }) => {
          members.delete(user);
          publish();
        },
      },
      true,
    );
    return () => {
      live = false;
      stop();
    };
  }, [channels, name, paramsKey]);
  return state;
}
