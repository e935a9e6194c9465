export { MessageSender, senderOf } from './message.sender';
export { MessageStore } from './message.store';
